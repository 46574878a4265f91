package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/server"
)

// TestFlagMistakes: every mistake on the command line is one line that says
// what to do, and exit code 2.
func TestFlagMistakes(t *testing.T) {
	srv := startServer(t)
	cases := []struct {
		name string
		env  func(string) string
		args []string
		want string
	}{
		{"unknown flag", nil, []string{"chat", "--nope"}, "unknown flag: --nope"},
		{"unknown command", nil, []string{"chatt"}, `unknown command "chatt"`},
		{"bad transport", nil, []string{"--server", srv.URL, "--transport", "pigeon", "chat"}, `--transport "pigeon": use auto, ws, sse, longpoll or poll`},
		{"bad user", nil, []string{"--server", srv.URL, "--user", "a b", "chat"}, `--user "a b"`},
		{"no user", env("USER="), []string{"--server", srv.URL, "send", "hi"}, "no user name: pass --user"},
		{"plain and json", nil, []string{"--plain", "--json", "chat"}, "plain json"},
		{"bad server", nil, []string{"--server", "ftp://x", "task", "list"}, `--server "ftp://x"`},
		{"empty server", nil, []string{"--server", "", "task", "list"}, "--server is empty"},
		{"extra argument", nil, []string{"chat", "lobby"}, `unknown command "lobby"`},
		{"negative history", nil, []string{"--server", srv.URL, "chat", "--history", "-1"}, "cannot be negative"},
		{"bad duration", nil, []string{"task", "start", "--interval", "soon"}, `invalid argument "soon"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, nil, tc.env, tc.args...)
			code := r.wait(t)
			errOut := r.errOut.String()
			if code != exitUsage || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line with %q", code, errOut, tc.want)
			}
		})
	}
}

// TestUnreachableServer: a server that is not there is one line that says
// what to do, for every command.
func TestUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{
		{"chat"}, {"chat", "--plain"}, {"watch-progress"}, {"watch-progress", "--task", "t1"},
		{"send", "hi"}, {"task", "list"}, {"task", "start"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, errOut, code := pushtui(t, nil, append([]string{"--server", addr}, args...)...)
			want := "pushtui: cannot reach pushd at http://" + addr + ": connection refused; start it with \"pushd serve\""
			if code != exitFailed || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
}

// TestNotPushd: something else at the address says so.
func TestNotPushd(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>nothing here</html>", http.StatusNotFound)
	}))
	defer other.Close()
	_, errOut, code := pushtui(t, nil, "--server", other.URL, "task", "list")
	if code != exitFailed || !strings.Contains(errOut, "does not look like pushd") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
}

// TestTokens: a server that needs a token says so, and --token (or
// PUSH_TOKEN) is sent.
func TestTokens(t *testing.T) {
	secret := []byte("a-test-secret-of-enough-length")
	srv, err := server.New(server.Config{AuthSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	}()
	_, errOut, code := pushtui(t, nil, "--server", ts.URL, "task", "list")
	if code != exitFailed || !strings.Contains(errOut, "pass --token (or set PUSH_TOKEN)") {
		t.Fatalf("without a token: exit %d: %q", code, errOut)
	}
	tok, err := server.MintToken(secret, "tester", []string{"*"}, true, true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := pushtui(t, nil, "--server", ts.URL, "--token", tok, "send", "hi"); code != 0 {
		t.Fatalf("--token: exit %d: %q", code, errOut)
	}
	r := start(t, nil, env("PUSH_TOKEN="+tok, "PUSH_SERVER="+ts.URL), "task", "list")
	if code := r.wait(t); code != 0 {
		t.Fatalf("PUSH_TOKEN and PUSH_SERVER: exit %d: %q", code, r.errOut.String())
	}
}

// TestHelpAndCompletion: help exits 0; completion scripts and task IDs
// come from cobra and the server.
func TestHelpAndCompletion(t *testing.T) {
	srv := startServer(t)
	out, _, code := pushtui(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "watch-progress") || !strings.Contains(out, "--transport") {
		t.Fatalf("help: exit %d:\n%s", code, out)
	}
	out, _, code = pushtui(t, nil, "completion", "bash")
	if code != 0 || !strings.Contains(out, "bash completion") {
		t.Fatalf("completion bash: exit %d", code)
	}
	out, _, _ = pushtui(t, nil, "__complete", "--transport", "")
	for _, tr := range []string{"auto", "ws", "sse", "longpoll", "poll"} {
		if !strings.Contains(out, tr+"\t") {
			t.Errorf("transport completion lacks %s:\n%s", tr, out)
		}
	}
	id := startTask(t, srv, "--name", "completable", "--total", "100000", "--interval", "10ms")
	out, _, _ = pushtui(t, nil, "--server", srv.URL, "__complete", "task", "cancel", "")
	if !strings.Contains(out, id+"\tcompletable (") {
		t.Fatalf("task ID completion lacks %s:\n%s", id, out)
	}
	pushtui(t, nil, "--server", srv.URL, "task", "cancel", id)
}
