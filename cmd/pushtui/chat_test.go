package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/pushd/push/protocol"
)

// TestChatPlainOverEachTransport: a plain chat prints the room's events,
// one line each, as another client sends.
func TestChatPlainOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			chat := start(t, nil, env("USER=bob"), "--server", srv.URL, "--transport", tr, "chat", "--room", "r1", "--plain")
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
			chat := start(t, nil, env("USER=bob"), "--server", srv.URL, "--transport", tr, "chat", "--room", "r1", "--json")
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
			chat := start(t, nil, env("USER=bob"), "--server", srv.URL, "--transport", tr, "chat", "--plain")
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

// TestChatHistory: --history shows the room's latest events on joining.
func TestChatHistory(t *testing.T) {
	srv := startServer(t)
	for _, text := range []string{"one", "two", "three"} {
		pushtui(t, nil, "--server", srv.URL, "send", text)
	}
	chat := start(t, nil, nil, "--server", srv.URL, "chat", "--plain", "--history", "2")
	out := chat.out.waitContains(t, "message tester two", "message tester three")
	if strings.Contains(out, "message tester one") {
		t.Fatalf("more history than asked:\n%s", out)
	}
	chat.stop(t)
}

// TestChatRefusedRoom: a room the server refuses ends with one line.
func TestChatRefusedRoom(t *testing.T) {
	srv := startServer(t)
	_, errOut, code := pushtui(t, nil, "--server", srv.URL, "chat", "--room", "no/slash")
	if code != exitUsage || !strings.Contains(errOut, `--room "no/slash"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
