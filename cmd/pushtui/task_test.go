package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/protocol"
)

func TestTaskCommands(t *testing.T) {
	srv := startServer(t)
	s := []string{"--server", srv.URL}

	// An external task, reported on from a "script".
	id := startTask(t, srv, "--kind", "external", "--name", "backup", "--total", "4")
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("task start printed %q, want an ID", id)
	}
	out, errOut, code := pushtui(t, nil, append(s, "task", "report", id, "--done", "2", "--message", "copied 2")...)
	if code != 0 || !strings.HasPrefix(out, id+" running 2/4 50% backup: copied 2") {
		t.Fatalf("report: exit %d: %q %s", code, out, errOut)
	}
	out, _, code = pushtui(t, nil, append(s, "task", "get", id)...)
	if code != 0 || !strings.HasPrefix(out, id+" running 2/4") {
		t.Fatalf("get: exit %d: %q", code, out)
	}
	out, _, code = pushtui(t, nil, append(s, "--json", "task", "report", id, "--state", "succeeded")...)
	var tk protocol.Task
	if code != 0 || json.Unmarshal([]byte(out), &tk) != nil || tk.State != protocol.TaskSucceeded {
		t.Fatalf("report succeeded: exit %d: %q", code, out)
	}

	// A demo task, cancelled (at once if it had not started yet: then the
	// line says how it ended).
	demo := startTask(t, srv, "--name", "long", "--total", "100000", "--interval", "10ms")
	out, _, code = pushtui(t, nil, append(s, "task", "cancel", demo)...)
	if code != 0 || !strings.HasPrefix(out, "cancelling "+demo+" ") && !strings.HasPrefix(out, demo+" cancelled ") {
		t.Fatalf("cancel: exit %d: %q", code, out)
	}

	// The list: newest first, one line each; JSON one object each.
	out, _, code = pushtui(t, nil, append(s, "task", "list")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], demo) || !strings.HasPrefix(lines[1], id+" succeeded") {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}
	out, _, _ = pushtui(t, nil, append(s, "--json", "task", "list")...)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if err := json.Unmarshal([]byte(line), &tk); err != nil {
			t.Fatalf("list --json: %q: %v", line, err)
		}
	}

	// Mistakes say what is wrong in one line.
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"task", "report", id}, cli.ExitUsage, "nothing to report"},
		{[]string{"task", "report", id, "--state", "done"}, cli.ExitUsage, `--state "done"`},
		{[]string{"task", "cancel", id}, cli.ExitFailed, "finished"},
		{[]string{"task", "get", "nope"}, cli.ExitFailed, "task not found"},
		{[]string{"task", "cancel"}, cli.ExitUsage, "task cancel needs a task id"},
		{[]string{"task", "start", "--kind", "nosuch"}, cli.ExitFailed, "nosuch"},
	}
	for _, tc := range cases {
		_, errOut, code := pushtui(t, nil, append(s, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

func TestSend(t *testing.T) {
	srv := startServer(t)
	s := []string{"--server", srv.URL}
	out, errOut, code := pushtui(t, nil, append(s, "send", "--room", "ops", "all", "good")...)
	if code != 0 || out != "" || errOut != "" {
		t.Fatalf("send: exit %d, %q, %q: want silence", code, out, errOut)
	}
	// Lines of standard input, each a message; --json prints them stored.
	out, _, code = pushtui(t, strings.NewReader("one\n\ntwo\n"), append(s, "--json", "send", "--room", "ops")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("send from stdin: exit %d: %q", code, out)
	}
	var e protocol.Event
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Text != "two" || e.Seq != 3 {
		t.Fatalf("stored event %+v, %v", e, err)
	}
	out, _, _ = pushtui(t, nil, append(s, "--plain", "send", "--room", "ops", "three")...)
	if !strings.HasSuffix(strings.TrimSpace(out), "room/ops message tester three") {
		t.Fatalf("--plain: %q", out)
	}
	_, errOut, code = pushtui(t, strings.NewReader("\n"), append(s, "send")...)
	if code != cli.ExitUsage || !strings.Contains(errOut, "nothing to send") {
		t.Fatalf("empty: exit %d %q", code, errOut)
	}
}

// A task started with --key and no --name is named after the key, so that
// the start repeated a second later asks for the same task; without a key
// it is named after the time.
func TestDefaultTaskName(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)
	if a, b := defaultTaskName("external", "deploy:1", now), defaultTaskName("external", "deploy:1", now.Add(time.Second)); a != b || a != "external-deploy:1" {
		t.Fatalf("names %q and %q a second apart with one key; want external-deploy:1 both times", a, b)
	}
	if got := defaultTaskName("demo", "", now); got != "demo-150405" {
		t.Fatalf("name without a key %q, want demo-150405", got)
	}
}

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
	out, errOut, code = pushtui(t, nil, append(s, "task", "start", "--kind", "external", "--room", "ops", "--cancel-unwatched", "30s", "--key", "deploy:1")...)
	if code != 0 || strings.TrimSpace(out) != tk.ID {
		t.Errorf("task start again with its key: exit %d, %q %s; want %s", code, out, errOut, tk.ID)
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
