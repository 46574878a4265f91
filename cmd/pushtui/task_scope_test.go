package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/protocol"
)

// TestTaskStartScopeAndKey: task start passes --room, --private,
// --cancel-unwatched and --key on, and refuses their mistakes itself.
func TestTaskStartScopeAndKey(t *testing.T) {
	srv := startServer(t)
	s := []string{"--server", srv.URL, "--user", "ann"}
	out, errOut, code := pushtui(t, nil, append(s, "--json", "task", "start", "--kind", "external", "--room", "ops", "--cancel-unwatched", "30s", "--key", "deploy:1")...)
	var tk protocol.Task
	if code != 0 || json.Unmarshal([]byte(out), &tk) != nil {
		t.Fatalf("task start: exit %d: %q %s", code, out, errOut)
	}
	if tk.Owner != "ann" || tk.Room != "ops" || tk.Private || tk.CancelUnwatched != "30s" {
		t.Errorf("started %+v; want ann's, in ops, cancelled after 30s unwatched", tk)
	}
	out, _, code = pushtui(t, nil, append(s, "task", "start", "--kind", "external", "--room", "ops", "--cancel-unwatched", "30s", "--key", "deploy:1")...)
	if code != 0 || strings.TrimSpace(out) != tk.ID {
		t.Errorf("task start again with its key: exit %d, %q; want %s", code, out, tk.ID)
	}
	out, _, _ = pushtui(t, nil, append(s, "--json", "task", "start", "--kind", "external", "--private")...)
	if json.Unmarshal([]byte(out), &tk) != nil || !tk.Private {
		t.Errorf("task start --private: %q", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--room", "ops", "--private"}, "not both"},
		{[]string{"--room", "no room"}, `--room "no room"`},
		{[]string{"--cancel-unwatched", "10ms"}, "from 1s to 24h"},
		{[]string{"--key", "a b"}, `--key "a b"`},
	} {
		_, errOut, code := pushtui(t, nil, append(append(s, "task", "start"), c.args...)...)
		if code != cli.ExitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("task start %v: exit %d, %q; want a usage error saying %q", c.args, code, errOut, c.want)
		}
	}
}

// TestWatchProgressIsAWatcher: a task cancelled after 3 s unwatched
// runs to its end while watch-progress --task follows it.
func TestWatchProgressIsAWatcher(t *testing.T) {
	srv := startServer(t)
	id := startTask(t, srv, "--name", "watched", "--total", "50", "--interval", "100ms", "--cancel-unwatched", "3s")
	out, errOut, code := pushtui(t, nil, "--server", srv.URL, "--plain", "watch-progress", "--task", id)
	if code != 0 || !strings.Contains(lastLine(out), id+" succeeded 50/50") {
		t.Fatalf("exit %d, last line %q: %s; want the task to succeed while watched", code, lastLine(out), errOut)
	}
}
