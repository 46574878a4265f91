package main

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// texts returns the texts of the messages of room, oldest first.
func texts(t *testing.T, s *pushdtest.Server, room string) []string {
	t.Helper()
	var out []string
	for _, e := range s.History(t, pushdtest.RoomPath(room)) {
		if e.Type == protocol.TypeMessage {
			out = append(out, e.Text)
		}
	}
	return out
}

// waitTexts waits until room's messages are want.
func waitTexts(t *testing.T, s *pushdtest.Server, room string, want ...string) {
	t.Helper()
	waitUntil(t, func() error {
		if got := texts(t, s, room); strings.Join(got, "|") != strings.Join(want, "|") {
			return fmt.Errorf("room %s has %q, want %q", room, got, want)
		}
		return nil
	})
}

// A chat screen with three rooms: each is joined (present), the list
// shows them, a message naming the user in a room not shown counts as
// unread and as a mention, alt+N shows room N and reads its counts, and
// /join and /part join and leave.
func TestChatSeveralRooms(t *testing.T) {
	s := pushdtest.Start(t, server.Config{PresenceGrace: 50 * time.Millisecond})
	scr := startScreen(t, env("USER=alice"), 100, 24, "--server", s.URL, "chat", "--room", "a,b,c")
	scr.waitScreen(t, " Rooms", "1 #a", "2 #b", "3 #c", "#a  alice @", "● connected")
	waitUntil(t, func() error {
		for _, room := range []string{"a", "b", "c"} {
			if got := s.Presence(t, room); len(got) != 1 || got[0] != "alice" {
				return fmt.Errorf("present in %s: %v", room, got)
			}
		}
		return nil
	})
	s.Publish(t, "b", "bob", "alice: build is green")
	s.Publish(t, "b", "bob", "second")
	scr.waitScreen(t, "2 #b       @1 2")
	scr.press(t, "\x1b2") // alt+2
	scr.waitScreen(t, "#b  alice @", "bob  alice: build is green")

	scr.press(t, "/join d\r")
	scr.waitScreen(t, "4 #d", "#d  alice @")
	waitUntil(t, func() error {
		if got := s.Presence(t, "d"); len(got) != 1 {
			return fmt.Errorf("present in d: %v", got)
		}
		return nil
	})
	scr.press(t, "/part\r")
	waitUntil(t, func() error {
		if got := s.Presence(t, "d"); len(got) != 0 {
			return fmt.Errorf("still present in d: %v", got)
		}
		return nil
	})
	scr.press(t, "\x03")
	scr.exits(t, 0)
}

// A chat screen remembers where the user left each room: the next start
// shows what came since under "N new since you left", at most --missed
// of them, saying how many more there are; --since-last=false does not.
func TestChatResumesWhereItLeft(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	state := t.TempDir()
	run := func(args ...string) *screen {
		return startScreen(t, env("USER=alice", "XDG_STATE_HOME="+state), 100, 30, append([]string{"--server", s.URL, "chat", "--room", "r"}, args...)...)
	}
	quit := func(scr *screen) {
		t.Helper()
		scr.press(t, "\x03")
		scr.exits(t, 0)
	}
	s.Publish(t, "r", "bob", "before-1")
	scr := run()
	scr.waitScreen(t, "before-1", "● connected")
	quit(scr)

	for i := 1; i <= 3; i++ {
		s.Publish(t, "r", "bob", fmt.Sprintf("while-away-%d", i))
	}
	scr = run()
	scr.waitScreen(t, "── 3 new since you left ──", "while-away-3")
	plain := ansi.Strip(scr.out.String())
	if strings.Index(plain, "before-1") > strings.Index(plain, "new since you left") {
		t.Fatalf("the marker is not below what was seen before:\n%s", plain)
	}
	quit(scr)

	for i := 1; i <= 10; i++ {
		s.Publish(t, "r", "bob", fmt.Sprintf("many-%02d", i))
	}
	scr = run("--missed", "4")
	scr.waitScreen(t, "10 new since you left", "6 earlier events not shown", "many-10")
	if plain := ansi.Strip(scr.out.String()); strings.Contains(plain, "many-06") {
		t.Fatalf("more than --missed shown:\n%s", plain)
	}
	quit(scr)

	s.Publish(t, "r", "bob", "latest")
	scr = run("--since-last=false", "--history", "1")
	scr.waitScreen(t, "latest", "● connected")
	if plain := ansi.Strip(scr.out.String()); strings.Contains(plain, "since you left") {
		t.Fatalf("--since-last=false resumed:\n%s", plain)
	}
	quit(scr)
}

// After a reset that would replay a long log (pushd restarted without its
// history, and much was said since), the chat shows at most --history of
// it, and one line saying what happened.
func TestChatResetShowsHistoryOnly(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	scr := startScreen(t, env("USER=alice"), 100, 30, "--server", s.URL, "chat", "--room", "r", "--history", "3")
	s.Publish(t, "r", "bob", "old")
	scr.waitScreen(t, "old", "● connected")
	s.Down(t)
	s.Restart(t) // a new memory store: a new epoch
	for i := 1; i <= 30; i++ {
		s.PublishDirect(t, "r", "bob", fmt.Sprintf("new-%02d", i))
	}
	s.Up(t)
	// The 3 latest: new-29, new-30 and alice's login.
	scr.waitScreen(t, "reset: the server restarted without its history", "28 earlier events not shown", "new-29", "new-30")
	if plain := ansi.Strip(scr.out.String()); strings.Contains(plain, "new-01") || strings.Contains(plain, "new-28") || strings.Count(plain, "reconnected over") != 1 {
		t.Fatalf("the reset replayed more than --history:\n%s", plain)
	}
	// The events left out are read back from the top.
	scr.press(t, "/more\r")
	scr.waitScreen(t, "new-01", "the start of #r")
}

// Alt+Enter breaks the line and a bracketed paste keeps its lines: the
// message goes out with its line breaks, the screen shows it under its
// author, and plain output keeps it one line.
func TestChatMultiLine(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	scr := startScreen(t, env("USER=alice"), 100, 24, "--server", s.URL, "chat", "--room", "ml")
	scr.waitScreen(t, "● connected")
	scr.press(t, "first\x1b\rsecond\r")
	waitTexts(t, s, "ml", "first\nsecond")
	// A message is stored and shown before its send is answered, and
	// until then the input line keeps it: a paste would join it.
	scr.waitDrawn(t, "alice first", "› message #ml")
	scr.press(t, "\x1b[200~pasted one\npasted two\npasted three\x1b[201~")
	scr.waitScreen(t, "› pasted one", "  pasted three")
	// Enter while the last send is still under way does nothing: press it
	// until the message goes (once it has, the input is empty, and Enter
	// sends nothing more).
	want := []string{"first\nsecond", "pasted one\npasted two\npasted three"}
	waitUntil(t, func() error {
		if got := texts(t, s, "ml"); len(got) < 2 {
			scr.press(t, "\r")
			return fmt.Errorf("room ml has %q", got)
		}
		return nil
	})
	waitTexts(t, s, "ml", want...)
	scr.waitScreen(t, "alice first", "               second", "alice pasted one", "               pasted three")

	for _, tr := range transports {
		out, errOut, code := pushtui(t, nil, "--server", s.URL, "--transport", tr, "chat", "--room", "ml", "--plain")
		if code != 0 || !strings.Contains(out, `message alice first\nsecond`+"\n") || !strings.Contains(out, `pasted one\npasted two\npasted three`+"\n") {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", tr, code, out, errOut)
		}
	}
}

// Piped chat started before pushd waits for it and sends its lines once
// it is up; one whose input ends while pushd is away again exits 0 when
// every line was sent.
func TestPipedChatWaitsForPushd(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	s.Down(t)
	in, w := io.Pipe()
	r := start(t, in, env("USER=ci"), "--server", s.URL, "chat", "--room", "ci", "--plain")
	io.WriteString(w, "one\ntwo\n")
	r.errOut.waitContains(t, "pushtui: waiting for pushd: cannot reach pushd at "+s.URL)
	s.Up(t)
	waitTexts(t, s, "ci", "one", "two")
	// pushtui knows "two" went out once it has it back in the room: the
	// answer to its publish may not have reached it yet, and without it
	// the line would wait for pushd to come back.
	r.out.waitContains(t, "message ci two")
	s.Down(t)
	w.Close()
	r.exits(t, 0)
	s.Up(t)
}

// Piped chat that cannot reach pushd for maxOffline while lines wait gives
// them up: they are reported not sent, and it exits 1.
func TestPipedChatGivesUpWaiting(t *testing.T) {
	defer func(d time.Duration) { maxOffline = d }(maxOffline)
	maxOffline = 500 * time.Millisecond
	s := pushdtest.Start(t, server.Config{})
	s.Down(t)
	_, errOut, code := pushtui(t, strings.NewReader("one\ntwo\n"), "--server", s.URL, "chat", "--room", "ci", "--plain")
	if code != cli.ExitFailed || !strings.Contains(errOut, "not sent: 2 lines: could not reach room/ci") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	s.Up(t)
}

// Demo tasks started within one second have names of their own.
func TestDemoNames(t *testing.T) {
	tc := &taskConn{}
	now := time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)
	got := []string{tc.demoName(now), tc.demoName(now), tc.demoName(now.Add(time.Second)), tc.demoName(now)}
	if want := "demo-150405 demo-150405-2 demo-150406 demo-150405-3"; strings.Join(got, " ") != want {
		t.Fatalf("names %v, want %s", got, want)
	}
}

// task cancel says it is cancelling, and with --wait how the task ended;
// without an id it says one is needed.
func TestTaskCancelOutput(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	var ids []string
	for range 2 {
		out, errOut, code := pushtui(t, nil, "--server", s.URL, "task", "start", "--total", "100000", "--interval", "10ms")
		if code != 0 {
			t.Fatalf("task start: exit %d: %s", code, errOut)
		}
		ids = append(ids, strings.TrimSpace(out))
	}
	// A task still queued when its cancel comes ends at once: then the
	// line is how it ended, with nothing to wait for.
	out, _, code := pushtui(t, nil, "--server", s.URL, "task", "cancel", ids[0])
	if code != 0 || !strings.HasPrefix(out, "cancelling "+ids[0]+" ") && !strings.HasPrefix(out, ids[0]+" cancelled ") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	out, _, code = pushtui(t, nil, "--server", s.URL, "task", "cancel", "--wait", ids[1])
	lines := strings.Split(strings.TrimSpace(out), "\n")
	ended := lines[len(lines)-1]
	if code != 0 || !strings.HasPrefix(ended, ids[1]+" cancelled ") ||
		len(lines) == 2 && !strings.HasPrefix(lines[0], "cancelling "+ids[1]) || len(lines) > 2 {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"task", "cancel"}, "pushtui: task cancel needs a task id (pushtui task list shows them)"},
		{[]string{"task", "get"}, "pushtui: task get needs a task id"},
		{[]string{"task", "get", "t1", "t2"}, "pushtui: task get takes one task id, not 2"},
		{[]string{"task", "report", "--done", "1"}, "pushtui: task report needs a task id"},
	} {
		_, errOut, code := pushtui(t, nil, append([]string{"--server", s.URL}, tc.args...)...)
		if code != cli.ExitUsage || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errOut)
		}
	}
}
