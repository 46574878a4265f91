package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// followRoom starts pushd and a chat of bob that follows room r1 over tr,
// printing as format says (--plain, --json), and waits until it is in.
func followRoom(t *testing.T, tr, format string) (*pushdtest.Server, *running) {
	t.Helper()
	srv := startServer(t)
	chat := start(t, nil, env("USER=bob"), "--server", srv.URL, "--transport", tr, "chat", "--room", "r1", format, "--follow")
	chat.errOut.waitContains(t, "connected to room/r1 over "+tr)
	return srv, chat
}

// TestChatPlainOverEachTransport: a plain chat prints the room's events,
// one line each, as another client sends.
func TestChatPlainOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv, chat := followRoom(t, tr, "--plain")
			if _, errOut, code := pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "--room", "r1", "hello", "bob"); code != 0 {
				t.Fatalf("send: exit %d: %s", code, errOut)
			}
			out := chat.out.waitContains(t, " room/r1 message alice hello bob")
			if !strings.Contains(out, " room/r1 login bob") {
				t.Errorf("no login line for bob:\n%s", out)
			}
			if code := chat.stop(t); code != cli.ExitInterrupted {
				t.Fatalf("exit %d after interrupt, want %d", code, cli.ExitInterrupted)
			}
		})
	}
}

// TestChatJSONOverEachTransport: --json prints each event as one JSON
// object, exactly as the server sent it.
func TestChatJSONOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv, chat := followRoom(t, tr, "--json")
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

			srv.Restart(t)
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
	if code != cli.ExitUsage || !strings.Contains(errOut, `--room "no/slash"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// roomLog returns the room's stored events as eventTypes gives them.
func roomLog(t *testing.T, srv *pushdtest.Server, room string) []string {
	t.Helper()
	var evs []string
	for _, e := range srv.History(t, pushdtest.RoomPath(room)) {
		evs = append(evs, strings.TrimSpace(string(e.Type)+" "+e.User+" "+e.Text))
	}
	return evs
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
			if code != cli.ExitFailed || errOut != "pushtui: no subscriptions here\n" {
				t.Fatalf("exit %d, stderr %q; want 1 and one line", code, errOut)
			}
			if out := s.out.String(); out != "" {
				t.Fatalf("a screen was drawn: %q", out)
			}
		})
		t.Run(strings.Join(args, " ")+" plain", func(t *testing.T) {
			_, errOut, code := pushtui(t, nil, append([]string{"--server", srv.URL, "--plain"}, args...)...)
			if code != cli.ExitFailed || errOut != "pushtui: no subscriptions here\n" {
				t.Fatalf("exit %d, stderr %q; want 1 and one line", code, errOut)
			}
		})
	}
}

// TestReconnectReportedOverEachTransport: after pushd was unreachable, the
// chat says it is connected again on every transport, at once, though
// nothing happens in the room (a long poll answers only at an event, or
// after its wait, here a minute; the user stays present meanwhile).
func TestReconnectReportedOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		for _, mode := range []string{"--plain", "--json"} {
			t.Run(tr+mode, func(t *testing.T) {
				srv := startServerWith(t, func(c *server.Config) {
					c.LongPollWait, c.PresenceGrace = time.Minute, time.Minute
				}, nil)
				chat := start(t, nil, nil, "--server", srv.URL, "--transport", tr, "chat", "--room", "q", mode, "--follow")
				connected := "pushtui: connected to room/q over " + tr + "\n"
				chat.errOut.waitContains(t, connected)
				srv.Down(t)
				chat.errOut.waitContains(t, "reconnecting to room/q")
				srv.Up(t)
				chat.errOut.waitFor(t, "connected again", func(s string) bool { return strings.Count(s, connected) == 2 })
				if code := chat.stop(t); code != cli.ExitInterrupted {
					t.Fatalf("exit %d after interrupt", code)
				}
			})
		}
	}
}
