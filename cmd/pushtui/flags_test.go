package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
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
		t.Run(tc.name, func(t *testing.T) { wantUsage(t, tc.env, tc.want, tc.args...) })
	}
}

// wantUsage runs pushtui with args and getenv, and checks it exits 2
// with one line on stderr that holds want.
func wantUsage(t *testing.T, getenv func(string) string, want string, args ...string) {
	t.Helper()
	r := start(t, nil, getenv, args...)
	code := r.wait(t)
	errOut := r.errOut.String()
	if code != cli.ExitUsage || !strings.Contains(errOut, want) || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q; want exit 2 and one line with %q", code, errOut, want)
	}
}

// TestMistakesFoundBeforeAnyRequest: values pushtui can check itself are
// usage errors (exit 2, one line) said before any request: the server named
// is not there, so a request would have been exit 1.
func TestMistakesFoundBeforeAnyRequest(t *testing.T) {
	dead := pushdtest.FreeAddr(t)
	alice := token(t, "alice", server.Claims{Rooms: []string{"*"}, Publish: true, Tasks: true})
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"port out of range", []string{"--server", "http://127.0.0.1:99999", "task", "list"}, `--server "http://127.0.0.1:99999": port 99999 is not from 1 to 65535`},
		{"port out of range without scheme", []string{"--server", "127.0.0.1:70000", "send", "hi"}, "port 70000 is not from 1 to 65535"},
		{"port zero", []string{"--server", "http://127.0.0.1:0", "chat"}, "port 0 is not from 1 to 65535"},

		{"interval 0s", []string{"task", "start", "--interval", "0s"}, "--interval 0s: a demo task's steps take from 1ms to 1h each"},
		{"interval too long", []string{"task", "start", "--interval", "2h"}, "--interval 2h0m0s"},
		{"total 0", []string{"task", "start", "--total", "0"}, "--total 0: a demo task has 1 to 1000000 steps"},
		{"total too many", []string{"task", "start", "--total", "1000001"}, "--total 1000001"},
		{"fail-at past total", []string{"task", "start", "--total", "3", "--fail-at", "4"}, "--fail-at 4: give a step from 1 to --total (3)"},
		{"external with interval", []string{"task", "start", "--kind", "external", "--interval", "1s"}, "--interval is for demo tasks"},
		{"external negative total", []string{"task", "start", "--kind", "external", "--total", "-1"}, "--total -1"},
		{"empty kind", []string{"task", "start", "--kind", " "}, "--kind is empty"},
		{"name with a newline", []string{"task", "start", "--name", "a\nb"}, "--name: give printable text of at most 200 bytes"},
		{"name too long", []string{"task", "start", "--name", strings.Repeat("n", 201)}, "--name: give printable text"},
		{"demo total of watch", []string{"watch-progress", "--demo-total", "0"}, "--demo-total 0"},
		{"demo interval of watch", []string{"watch-progress", "--demo-interval", "0s"}, "--demo-interval 0s"},

		{"done and percent", []string{"task", "report", "t1", "--done", "1", "--percent", "5"}, "--done and --percent: give one of them"},
		{"negative done", []string{"task", "report", "t1", "--done", "-1"}, "--done -1: give 0 or more"},
		{"done over total", []string{"task", "report", "t1", "--done", "5", "--total", "3"}, "--done 5 is more than --total 3"},
		{"percent over 100", []string{"task", "report", "t1", "--percent", "101"}, "--percent 101: give 0 to 100"},
		{"percent NaN", []string{"task", "report", "t1", "--percent", "NaN"}, "--percent NaN"},
		{"message too long", []string{"task", "report", "t1", "--message", strings.Repeat("m", 1025)}, "--message: give UTF-8 text of at most 1024 bytes"},

		{"empty --task", []string{"watch-progress", "--task", ""}, `--task is empty: give a task ID`},
		{"blank --task", []string{"watch-progress", "--task", "  "}, `--task is empty`},
		{"empty task ID to cancel", []string{"task", "cancel", "t1", ""}, "the task ID is empty"},
		{"empty task ID to get", []string{"task", "get", " "}, "the task ID is empty"},
		{"empty task ID to report", []string{"task", "report", "", "--done", "1"}, "the task ID is empty"},
		{"empty --user", []string{"--user", "", "send", "hi"}, "--user is empty"},
		{"empty room", []string{"chat", "--room", ""}, `--room ""`},
		{"empty text", []string{"send", "--room", "lobby", ""}, "nothing to send: the text is empty or only white space"},
		{"blank text", []string{"send", "--room", "lobby", "   "}, "nothing to send: the text is empty or only white space"},
		{"blank words", []string{"send", " ", "\t", ""}, "nothing to send"},
	}
	// A --user that is not the token's, for every command.
	for _, args := range [][]string{
		{"chat"}, {"chat", "--plain"}, {"send", "hi"}, {"watch-progress"}, {"watch-progress", "--task", "t1"},
		{"task", "list"}, {"task", "start"}, {"task", "cancel", "t1"}, {"task", "get", "t1"}, {"task", "report", "t1", "--done", "1"},
	} {
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{"--user not the token's: " + strings.Join(args, " "), append([]string{"--user", "qa", "--token", alice}, args...),
			"--user qa, but the token is for alice and the server would refuse any other name: leave out --user, or pass --user alice"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantUsage(t, nil, tc.want, append([]string{"--server", dead}, tc.args...)...) })
	}
}

// TestUnreadableTokenFirst: a token that cannot be read is the one mistake
// said, before any request, whether $USER is set or not, and before a
// --user that is empty; from --token or PUSH_TOKEN.
func TestUnreadableTokenFirst(t *testing.T) {
	dead := pushdtest.FreeAddr(t)
	for _, user := range []string{"USER=tester", "USER="} {
		for _, tok := range []struct{ flag, env, want string }{
			{"garbage", "", "--token: the token is malformed: not a JWT"},
			{"a.b.c", "", "--token: the token is malformed: claims are not base64url"},
			{"", "garbage", "PUSH_TOKEN: the token is malformed: not a JWT"},
		} {
			for _, args := range [][]string{{"chat"}, {"chat", "--plain"}, {"send", "hi"}, {"watch-progress"}, {"task", "list"}, {"--user", "", "send", "hi"}} {
				all := []string{"--server", dead}
				if tok.flag != "" {
					all = append(all, "--token", tok.flag)
				}
				all = append(all, args...)
				t.Run(fmt.Sprintf("%s %v", user, all[2:]), func(t *testing.T) {
					wantUsage(t, env(user, "PUSH_TOKEN="+tok.env), tok.want, all...)
				})
			}
		}
	}
}

// TestUnreachableServer: a server that is not there is one line that says
// what to do, for every command but piped chat, which waits for it
// (TestPipedChatWaitsForPushd).
func TestUnreachableServer(t *testing.T) {
	addr := pushdtest.FreeAddr(t)
	for _, args := range [][]string{
		{"watch-progress"}, {"watch-progress", "--task", "t1"},
		{"send", "hi"}, {"task", "list"}, {"task", "start"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, errOut, code := pushtui(t, nil, append([]string{"--server", addr}, args...)...)
			want := "pushtui: cannot reach pushd at http://" + addr + ": connection refused; start it with \"pushd serve\""
			if code != cli.ExitFailed || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
}

// TestNotPushd: something else at the address says so in one line, for
// every command, without quoting its pages.
func TestNotPushd(t *testing.T) {
	page := "<!DOCTYPE html>\n<html>\n<head><title>Error</title></head>\n<body>\n<h1>Nope</h1>\n</body>\n</html>\n"
	servers := map[string]http.HandlerFunc{
		// As a static file server does: 404 for GETs of paths it lacks,
		// 501 for POSTs.
		"file server": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			if r.Method == http.MethodPost {
				w.WriteHeader(http.StatusNotImplemented)
			} else {
				w.WriteHeader(http.StatusNotFound)
			}
			io.WriteString(w, page)
		},
		// As a single-page app's server does: its page for every path.
		"page for every path": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, page)
		},
	}
	for name, h := range servers {
		other := httptest.NewServer(h)
		defer other.Close()
		for _, args := range [][]string{
			{"send", "hi"}, {"chat"}, {"chat", "--plain"}, {"watch-progress"}, {"watch-progress", "--task", "t1"},
			{"task", "list"}, {"task", "start"}, {"task", "get", "t1"}, {"task", "cancel", "t1"}, {"task", "report", "t1", "--done", "1"},
		} {
			t.Run(name+"/"+strings.Join(args, " "), func(t *testing.T) {
				_, errOut, code := pushtui(t, nil, append([]string{"--server", other.URL}, args...)...)
				want := "pushtui: " + other.URL + " does not look like pushd (it answered an API request with "
				if code != cli.ExitFailed || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "<") {
					t.Fatalf("exit %d, stderr %q; want exit 1 and one line starting %q", code, errOut, want)
				}
			})
		}
	}
	// A proxy in front of a pushd it cannot reach.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, page, http.StatusBadGateway)
	}))
	defer proxy.Close()
	_, errOut, code := pushtui(t, nil, "--server", proxy.URL, "send", "hi")
	want := "pushtui: " + proxy.URL + " answered 502 Bad Gateway without pushd's error body: a proxy in front of pushd that cannot reach it, or not pushd at all"
	if code != cli.ExitFailed || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("behind a proxy: exit %d, stderr %q", code, errOut)
	}
}

// TestTokenNamesTheUser: with a token, pushtui acts as the token's user
// unless --user names one, over $USER; a --user that is the token's is
// fine.
func TestTokenNamesTheUser(t *testing.T) {
	srv := startServerWith(t, func(c *server.Config) { c.AuthSecret = testSecret }, nil)
	tok := token(t, "alice", server.Claims{Rooms: []string{"lobby"}, Publish: true, Tasks: true})
	qa := env("USER=qa")
	s := []string{"--server", srv.URL}

	r := start(t, nil, qa, append(s, "--token", tok, "--json", "send", "hi")...)
	r.exits(t, 0)
	var e protocol.Event
	if err := json.Unmarshal([]byte(r.out.String()), &e); err != nil || e.User != "alice" || e.Text != "hi" {
		t.Fatalf("send stored %+v, %v; want alice's hi", e, err)
	}
	for _, tr := range transports {
		r = start(t, strings.NewReader("hello\n"), qa, append(s, "--token", tok, "--transport", tr, "chat", "--history", "0")...)
		r.exits(t, 0)
		if out := r.out.String(); !strings.Contains(out, "message alice hello") {
			t.Fatalf("chat over %s printed:\n%s", tr, out)
		}
	}
	// The token from the environment, and a --user that agrees with it.
	r = start(t, nil, env("USER=qa", "PUSH_TOKEN="+tok), append(s, "--user", "alice", "--json", "send", "from env")...)
	if code := r.wait(t); code != 0 || json.Unmarshal([]byte(r.out.String()), &e) != nil || e.User != "alice" {
		t.Fatalf("PUSH_TOKEN and --user alice: exit %d: %s %s", code, r.out.String(), r.errOut.String())
	}
	// The screen too.
	sc := startScreen(t, qa, 100, 24, append(s, "--token", tok, "chat")...)
	sc.waitScreen(t, "● connected", "Here (1)")
	sc.press(t, "on screen\r")
	sc.waitScreen(t, "alice on screen")
	if strings.Contains(ansi.Strip(sc.out.String()), "qa") {
		t.Fatalf("the screen shows $USER:\n%s", ansi.Strip(sc.out.String()))
	}
}

// TestTokens: a server that needs a token says so, and --token (or
// PUSH_TOKEN) is sent.
func TestTokens(t *testing.T) {
	ts := startServerWith(t, func(c *server.Config) { c.AuthSecret = testSecret }, nil)
	_, errOut, code := pushtui(t, nil, "--server", ts.URL, "task", "list")
	if code != cli.ExitFailed || !strings.Contains(errOut, "pass --token (or set PUSH_TOKEN)") {
		t.Fatalf("without a token: exit %d: %q", code, errOut)
	}
	tok := token(t, "tester", server.Claims{Rooms: []string{"*"}, Publish: true, Tasks: true})
	if _, errOut, code := pushtui(t, nil, "--server", ts.URL, "--token", tok, "send", "hi"); code != 0 {
		t.Fatalf("--token: exit %d: %q", code, errOut)
	}
	r := start(t, nil, env("PUSH_TOKEN="+tok, "PUSH_SERVER="+ts.URL), "task", "list")
	r.exits(t, 0)
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
