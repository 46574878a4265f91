package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// TestChatPlainOverEachTransport: a plain chat prints the room's events,
// one line each, as another client sends.
func TestChatPlainOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			chat := start(t, nil, env("USER=bob"), "--server", srv.URL, "--transport", tr, "chat", "--room", "r1", "--plain", "--follow")
			chat.errOut.waitContains(t, "connected to room/r1 over "+tr)
			if _, errOut, code := pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "--room", "r1", "hello", "bob"); code != 0 {
				t.Fatalf("send: exit %d: %s", code, errOut)
			}
			out := chat.out.waitContains(t, " room/r1 message alice hello bob")
			if !strings.Contains(out, " room/r1 login bob") {
				t.Errorf("no login line for bob:\n%s", out)
			}
			if code := chat.stop(t); code != exitInterrupted {
				t.Fatalf("exit %d after interrupt, want %d", code, exitInterrupted)
			}
		})
	}
}

// TestChatJSONOverEachTransport: --json prints each event as one JSON
// object, exactly as the server sent it.
func TestChatJSONOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			chat := start(t, nil, env("USER=bob"), "--server", srv.URL, "--transport", tr, "chat", "--room", "r1", "--json", "--follow")
			chat.errOut.waitContains(t, "connected to room/r1 over "+tr)
			pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "--room", "r1", `quote " and <tag>`)
			out := chat.out.waitContains(t, `"text":"quote \" and <tag>"`)
			var msgs int
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var e protocol.Event
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("not a JSON event: %q: %v", line, err)
				}
				if e.Epoch == "" || e.Seq == 0 || e.Stream != "room/r1" {
					t.Fatalf("event lacks its position: %+v", e)
				}
				if e.Type == protocol.TypeMessage {
					msgs++
				}
			}
			if msgs != 1 {
				t.Fatalf("%d messages, want 1:\n%s", msgs, out)
			}
			chat.stop(t)
		})
	}
}

// TestTwoChatsSeeEachOther: two people in one room over different
// transports see each other's messages, and come and go.
func TestTwoChatsSeeEachOther(t *testing.T) {
	pairs := [][2]string{{"ws", "longpoll"}, {"sse", "poll"}, {"auto", "ws"}}
	for _, p := range pairs {
		t.Run(p[0]+"+"+p[1], func(t *testing.T) {
			srv := startServer(t)
			aliceIn, aliceKeys := io.Pipe()
			defer aliceKeys.Close()
			alice := start(t, aliceIn, env("USER=alice"), "--server", srv.URL, "--transport", p[0], "chat", "--plain")
			alice.errOut.waitContains(t, "connected to room/lobby")
			bobIn, bobKeys := io.Pipe()
			defer bobKeys.Close()
			bob := start(t, bobIn, env("USER=bob"), "--server", srv.URL, "--transport", p[1], "chat", "--plain")
			bob.errOut.waitContains(t, "connected to room/lobby over "+p[1])

			alice.out.waitContains(t, "login bob")
			io.WriteString(aliceKeys, "hi bob\n")
			bob.out.waitContains(t, "message alice hi bob")
			io.WriteString(bobKeys, "hi alice\n")
			alice.out.waitContains(t, "message bob hi alice")

			bob.out.waitContains(t, "message bob hi alice")
			bobKeys.Close()
			bob.stop(t)
			alice.out.waitContains(t, "logout bob")
			aliceKeys.Close()
			alice.stop(t)
			// Each saw every message once.
			for who, out := range map[string]string{"alice": alice.out.String(), "bob": bob.out.String()} {
				for _, m := range []string{"message alice hi bob", "message bob hi alice"} {
					if n := strings.Count(out, m); n != 1 {
						t.Errorf("%s saw %q %d times:\n%s", who, m, n, out)
					}
				}
			}
		})
	}
}

// TestChatResumesAcrossServerRestart: when pushd restarts (memory store),
// the chat says it is reconnecting, gets a reset, and goes on; nothing is
// shown twice.
func TestChatResumesAcrossServerRestart(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			chat := start(t, nil, env("USER=bob"), "--server", srv.URL, "--transport", tr, "chat", "--plain", "--follow")
			chat.errOut.waitContains(t, "connected to room/lobby")
			pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "before")
			chat.out.waitContains(t, "message alice before")

			srv.restart(t)
			if tr == "ws" || tr == "sse" {
				// Streams drop and come back; polls just go on.
				chat.errOut.waitContains(t, "reconnecting to room/lobby")
			}
			chat.out.waitContains(t, "room/lobby reset epoch_changed")
			pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "after")
			out := chat.out.waitContains(t, "message alice after")
			if n := strings.Count(out, "message alice before"); n != 1 {
				t.Fatalf("the message before the restart shown %d times:\n%s", n, out)
			}
			chat.stop(t)
		})
	}
}

// TestChatHistory: --history shows the room's latest events on joining;
// with nothing to send, a chat not on a terminal prints them and its own
// login, and exits.
func TestChatHistory(t *testing.T) {
	srv := startServer(t)
	for _, text := range []string{"one", "two", "three"} {
		pushtui(t, nil, "--server", srv.URL, "send", text)
	}
	out, errOut, code := pushtui(t, nil, "--server", srv.URL, "chat", "--plain", "--history", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := eventTypes(out)
	if want := []string{"message tester two", "message tester three", "login tester"}; !slices.Equal(got, want) {
		t.Fatalf("printed %q, want %q:\n%s", got, want, out)
	}
}

// eventTypes returns the plain lines of out without their time and seq:
// "message alice hi".
func eventTypes(out string) []string {
	var evs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		_, rest, ok := strings.Cut(line, " room/")
		if !ok {
			continue
		}
		_, ev, _ := strings.Cut(rest, " ")
		evs = append(evs, ev)
	}
	return evs
}

// TestChatRefusedRoom: a room the server refuses ends with one line.
func TestChatRefusedRoom(t *testing.T) {
	srv := startServer(t)
	_, errOut, code := pushtui(t, nil, "--server", srv.URL, "chat", "--room", "no/slash")
	if code != exitUsage || !strings.Contains(errOut, `--room "no/slash"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// roomLog returns the room's stored events as eventTypes gives them.
func roomLog(t *testing.T, srv *testServer, room string) []string {
	t.Helper()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Poll(context.Background(), client.Room(room), client.PollOptions{Since: "0"})
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, e := range p.Events {
		evs = append(evs, strings.TrimSpace(string(e.Type)+" "+e.User+" "+e.Text))
	}
	return evs
}

// TestChatPipedInput: lines piped in are sent once the chat is in the
// room, so its login comes first; at the end of input it prints the room up
// to its last line and exits 0.
func TestChatPipedInput(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "--room", "r", "earlier")
			out, errOut, code := pushtui(t, strings.NewReader("one\n\n  \ntwo\n"), "--server", srv.URL, "--transport", tr, "chat", "--room", "r", "--history", "0")
			if code != 0 || errOut != "pushtui: connected to room/r over "+tr+"\n" {
				t.Fatalf("exit %d: %q", code, errOut)
			}
			want := []string{"login tester", "message tester one", "message tester two"}
			if got := eventTypes(out); !slices.Equal(got, want) {
				t.Fatalf("printed %q, want %q:\n%s", got, want, out)
			}
			stored := roomLog(t, srv, "r")
			if want := []string{"message alice earlier", "login tester", "message tester one", "message tester two"}; len(stored) < 4 || !slices.Equal(stored[:4], want) {
				t.Fatalf("the room holds %q, want it to start with %q", stored, want)
			}
		})
	}
}

// TestChatPipedInputNotSent: a line the server refuses is said on standard
// error; the others go out, and the exit code is 1.
func TestChatPipedInputNotSent(t *testing.T) {
	srv := startServer(t)
	in := "one\n" + strings.Repeat("x", 5000) + "\ntwo\n"
	out, errOut, code := pushtui(t, strings.NewReader(in), "--server", srv.URL, "chat", "--room", "r", "--history", "0")
	if code != exitFailed || !strings.Contains(errOut, "pushtui: not sent:") || !strings.HasSuffix(errOut, "pushtui: 1 of 3 lines were not sent\n") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	if got, want := eventTypes(out), []string{"login tester", "message tester one", "message tester two"}; !slices.Equal(got, want) {
		t.Fatalf("printed %q, want %q", got, want)
	}
}

// TestChatFollowAfterInput: with --follow the chat goes on printing the
// room after the end of its input.
func TestChatFollowAfterInput(t *testing.T) {
	srv := startServer(t)
	chat := start(t, strings.NewReader("one\n"), nil, "--server", srv.URL, "chat", "--room", "r", "--follow")
	chat.out.waitContains(t, "message tester one")
	pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "--room", "r", "later")
	chat.out.waitContains(t, "message alice later")
	if code := chat.stop(t); code != exitInterrupted {
		t.Fatalf("exit %d after interrupt, want %d", code, exitInterrupted)
	}
}

// refuseSubscriptions stands in front of pushd as an authorizing proxy
// that lets requests through but refuses every subscription (a request
// for events after a cursor), with pushd's own 403 answer.
func refuseSubscriptions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") && r.URL.Query().Has("since") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":{"code":"forbidden","message":"no subscriptions here"}}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestRefusedSubscriptionIsOneLine: a subscription refused at once ends
// the command with one line and exit 1: no screen is drawn, and nothing
// is said twice.
func TestRefusedSubscriptionIsOneLine(t *testing.T) {
	srv := startServerWith(t, nil, refuseSubscriptions)
	id := startTask(t, srv, "--total", "100000", "--interval", "10ms")
	defer pushtui(t, nil, "--server", srv.URL, "task", "cancel", id)
	for _, args := range [][]string{
		{"chat"}, {"watch-progress"}, {"watch-progress", "--task", id},
	} {
		t.Run(strings.Join(args, " ")+" screen", func(t *testing.T) {
			s := startScreen(t, nil, 80, 20, append([]string{"--server", srv.URL}, args...)...)
			code := s.wait(t)
			errOut := s.errOut.String()
			if code != exitFailed || errOut != "pushtui: no subscriptions here\n" {
				t.Fatalf("exit %d, stderr %q; want 1 and one line", code, errOut)
			}
			if out := s.out.String(); out != "" {
				t.Fatalf("a screen was drawn: %q", out)
			}
		})
		t.Run(strings.Join(args, " ")+" plain", func(t *testing.T) {
			_, errOut, code := pushtui(t, nil, append([]string{"--server", srv.URL, "--plain"}, args...)...)
			if code != exitFailed || errOut != "pushtui: no subscriptions here\n" {
				t.Fatalf("exit %d, stderr %q; want 1 and one line", code, errOut)
			}
		})
	}
}
