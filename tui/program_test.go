package tui

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/screentest"
	"github.com/pushd/push/protocol"
)

// chatProgram runs an 80×20 chat screen of alice in lobby on server as a
// Bubble Tea program, on a fake connection where alice and bob are
// present; the connection's channel is closed when the test ends, which
// ends the feed command's goroutine.
func chatProgram(t *testing.T, server string) (*teatest.TestModel, *fakeConn) {
	t.Helper()
	conn := newFakeConn()
	conn.users = []string{"alice", "bob"}
	c := &clock{now: t0}
	m := NewChatModel(ChatConfig{Conn: conn, Room: "lobby", User: "alice", Location: time.UTC, Common: Common{Server: server, Transport: "auto", Now: c.Now}})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 20))
	t.Cleanup(func() { close(conn.ch) })
	return tm, conn
}

// TestChatProgram runs the chat screen as a real Bubble Tea program: the
// feed command delivers updates from the channel, keys type and send, and
// the final screen is the one the last updates drew.
func TestChatProgram(t *testing.T) {
	tm, conn := chatProgram(t, "http://127.0.0.1:8080")

	conn.ch <- status("room/lobby", client.StateConnected, "ws")
	conn.ch <- roomEv(1, protocol.TypeLogin, "bob", "")
	conn.ch <- roomEv(2, protocol.TypeMessage, "bob", "hi alice")
	screentest.WaitFor(t, tm, "hi alice", "connected")

	tm.Type("hello bob")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	screentest.Until(t, tm, func([]byte) bool {
		return conn.calls(func() int { return len(conn.sent) }) == 1
	})
	// The server echoes what was sent, as it does to every subscriber.
	conn.ch <- roomEv(3, protocol.TypeMessage, "alice", "hello bob")
	screentest.WaitFor(t, tm, "hello bob")

	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.WaitFinished(t, teatest.WithFinalTimeout(screentest.Timeout))
	final := tm.FinalModel(t).(*ChatModel)
	if final.Result() != nil {
		t.Fatalf("Result = %v", final.Result())
	}
	if got := strings.Join(conn.sent, "|"); got != "hello bob" {
		t.Fatalf("sent %q", got)
	}
	if n := conn.calls(func() int { return conn.presences }); n != 1 {
		t.Fatalf("presence fetched %d times, want once", n)
	}
	final.quitting = false // draw the last screen again for the golden file
	requireGolden(t, final.View(), 80, 20)
}

// TestWatchProgram runs the task list as a program and starts a demo task
// with n.
func TestWatchProgram(t *testing.T) {
	conn := newFakeConn()
	conn.tasks = someTasks()
	c := &clock{now: t0}
	m := NewWatchModel(WatchConfig{Conn: conn, Common: Common{Server: "http://127.0.0.1:8080", Transport: "ws", Now: c.Now}})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 14))
	defer close(conn.ch)

	conn.ch <- status("tasks", client.StateConnected, "ws")
	screentest.WaitFor(t, tm, "warm-cache", "connected")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("n")})
	screentest.WaitFor(t, tm, "started demo-9")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	tm.WaitFinished(t, teatest.WithFinalTimeout(screentest.Timeout))
	final := tm.FinalModel(t).(*WatchModel)
	if final.Selected() != "t9" {
		t.Fatalf("selected %s", final.Selected())
	}
}

// TestFollowProgram follows a task to its end: the program quits by itself.
func TestFollowProgram(t *testing.T) {
	conn := newFakeConn()
	conn.task = task("t5", "build-42", protocol.TaskRunning, 10, 100, 0)
	c := &clock{now: t0}
	m := NewFollowModel(FollowConfig{Conn: followConn{conn}, TaskID: "t5", Common: Common{Server: "s", Now: c.Now}})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	defer close(conn.ch)

	conn.ch <- status("tasks", client.StateConnected, "sse")
	conn.ch <- taskEv(1, t0.Add(time.Second), task("t5", "build-42", protocol.TaskRunning, 50, 100, 0))
	screentest.WaitFor(t, tm, "50/100")
	conn.ch <- taskEv(2, t0.Add(2*time.Second), task("t5", "build-42", protocol.TaskSucceeded, 100, 100, 0))
	tm.WaitFinished(t, teatest.WithFinalTimeout(screentest.Timeout))
	got, err := tm.FinalModel(t).(*FollowModel).Result()
	if err != nil || got.State != protocol.TaskSucceeded {
		t.Fatalf("Result = %v, %v", got.State, err)
	}
	out, err := io.ReadAll(tm.FinalOutput(t))
	if err != nil {
		t.Fatal(err)
	}
	// What it drew last stays on the terminal: the outcome.
	if !bytes.Contains(out, []byte("build-42 succeeded after")) {
		t.Fatalf("the last screen lacks the outcome:\n%q", out)
	}
}
