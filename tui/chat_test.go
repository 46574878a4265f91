package tui

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/screentest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// newChat returns a chat screen of w×h on conn, its presence fetched as
// alice and bob, connected over ws.
func newChat(t *testing.T, conn *fakeConn, w, h int) (*ChatModel, *clock) {
	c := &clock{now: t0}
	m := NewChatModel(ChatConfig{Conn: conn, Room: "lobby", User: "alice", Location: time.UTC,
		Common: Common{Server: "http://127.0.0.1:8080", Transport: "auto", Now: c.Now}})
	open(m, w, h)
	return m, c
}

// connect brings a chat screen to connected with alice and bob present.
func connect(m *ChatModel) {
	m.Update(updates(status("room/lobby", client.StateConnected, "ws"), status("tasks", client.StateConnected, "ws")))
	m.Update(presenceMsg{Gen: m.people.gen, Users: []string{"alice", "bob"}})
	m.Update(tasksMsg{Gen: m.taskGen})
}

func TestChatScreen(t *testing.T) {
	const w, h = 80, 20
	conversation := func(m *ChatModel) {
		connect(m)
		m.Update(updates(
			roomEv(1, protocol.TypeLogin, "carol", ""),
			roomEv(2, protocol.TypeMessage, "bob", "hello everyone, this message is long enough that it has to wrap onto a second line of the pane"),
			roomEv(3, protocol.TypeMessage, "alice", "hi bob"),
			roomEv(4, protocol.TypeMessage, "carol", "multi\nline"),
			roomEv(5, protocol.TypeLogout, "carol", ""),
		))
	}
	cases := []struct {
		name  string
		w, h  int
		setup func(m *ChatModel, c *clock, conn *fakeConn)
	}{
		{"connecting", w, h, func(m *ChatModel, c *clock, conn *fakeConn) {}},
		{"conversation", w, h, func(m *ChatModel, c *clock, conn *fakeConn) { conversation(m) }},
		{"reconnecting", w, h, func(m *ChatModel, c *clock, conn *fakeConn) {
			conversation(m)
			m.Update(updates(Update{Status: &Status{Stream: "room/lobby", State: client.StateReconnecting, Transport: "ws",
				Attempt: 2, RetryIn: 4 * time.Second, Err: errRefused}}))
			c.Advance(1500 * time.Millisecond) // the countdown shows 3s
		}},
		{"reset", w, h, func(m *ChatModel, c *clock, conn *fakeConn) {
			conversation(m)
			m.Update(updates(
				Update{Status: &Status{Stream: "room/lobby", State: client.StateReconnecting, Transport: "ws", Attempt: 1, RetryIn: time.Second, Err: errDropped}},
				status("room/lobby", client.StateConnected, "sse"),
				resetEv("room/lobby", "ep2", 0, protocol.ResetEpochChanged),
			))
			m.Update(presenceMsg{Gen: m.people.gen, Users: []string{"alice"}})
		}},
		{"tasks", w, h, func(m *ChatModel, c *clock, conn *fakeConn) {
			conversation(m)
			m.Update(updates(
				taskEv(1, t0.Add(2*time.Second), task("t1", "build-42", protocol.TaskRunning, 40, 100, 0)),
				taskEv(2, t0.Add(2*time.Second), task("t2", "queued-job", protocol.TaskQueued, 0, 10, 1)),
				taskEv(3, t0.Add(2*time.Second), task("t3", "done-job", protocol.TaskSucceeded, 10, 10, 1)),
			))
		}},
		{"scrolled", w, h, func(m *ChatModel, c *clock, conn *fakeConn) {
			connect(m)
			us := messages(30, "message")
			m.Update(updates(us...))
			m.Update(keyMsg("pgup"))
			m.Update(updates(roomEv(31, protocol.TypeMessage, "carol", "new one"), roomEv(32, protocol.TypeMessage, "bob", "and another")))
		}},
		{"send_error", w, h, func(m *ChatModel, c *clock, conn *fakeConn) {
			conversation(m)
			conn.sendErr = fmt.Errorf("publish to room lobby: %w", errRefused)
			typeText(m, "are you there?")
			send(m)
		}},
		{"narrow", 44, 16, func(m *ChatModel, c *clock, conn *fakeConn) { conversation(m) }},
		{"closed", w, h, func(m *ChatModel, c *clock, conn *fakeConn) {
			conversation(m)
			m.Update(updates(Update{Status: &Status{Stream: "room/lobby", State: client.StateClosed, Err: fmt.Errorf("room name refused")}}))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := newFakeConn()
			m, c := newChat(t, conn, tc.w, tc.h)
			tc.setup(m, c, conn)
			requireGolden(t, m.View(), tc.w, tc.h)
		})
	}
}

func TestChatEvents(t *testing.T) {
	t.Run("message", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(roomEv(1, protocol.TypeMessage, "bob", "hello")))
		contains(t, m.View(), "08:30:01 bob", "hello")
	})
	t.Run("login and logout keep presence", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(roomEv(1, protocol.TypeLogin, "carol", "")))
		if got := strings.Join(m.people.Users(), ","); got != "alice,bob,carol" {
			t.Fatalf("after login: %s", got)
		}
		contains(t, m.View(), "→ carol joined", "Here (3)")
		m.Update(updates(roomEv(2, protocol.TypeLogout, "bob", "")))
		if got := strings.Join(m.people.Users(), ","); got != "alice,carol" {
			t.Fatalf("after logout: %s", got)
		}
		contains(t, m.View(), "← bob left", "Here (2)")
	})
	t.Run("events during a presence fetch are applied on top of it", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		gen := m.people.gen
		m.Update(updates(roomEv(1, protocol.TypeLogin, "dave", ""), roomEv(2, protocol.TypeLogout, "bob", "")))
		m.Update(presenceMsg{Gen: gen, Users: []string{"alice", "bob"}})
		if got := strings.Join(m.people.Users(), ","); got != "alice,dave" {
			t.Fatalf("users = %s, want alice,dave", got)
		}
	})
	t.Run("an old presence answer is ignored", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(presenceMsg{Gen: m.people.gen - 1, Users: []string{"zed"}})
		if got := strings.Join(m.people.Users(), ","); got != "alice,bob" {
			t.Fatalf("users = %s", got)
		}
	})
	t.Run("reset refetches presence and says so", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		gen := m.people.gen
		_, cmd := m.Update(updates(resetEv("room/lobby", "ep2", 0, protocol.ResetEpochChanged)))
		if cmd == nil || m.people.gen != gen+1 {
			t.Fatalf("no presence refetch after a reset (gen %d -> %d)", gen, m.people.gen)
		}
		v := m.View()
		contains(t, v, "⟳ reset: the server restarted", "· reset")
		m.Update(presenceMsg{Gen: m.people.gen, Users: []string{"zed"}})
		if got := strings.Join(m.people.Users(), ","); got != "zed" {
			t.Fatalf("users = %s, want zed", got)
		}
	})
	t.Run("reset reasons", func(t *testing.T) {
		for _, r := range []string{protocol.ResetEpochChanged, protocol.ResetRetention, protocol.ResetCursorAhead, "other"} {
			if resetText(r) == "" {
				t.Errorf("no text for %s", r)
			}
		}
	})
	t.Run("the reset note leaves the header after a while", func(t *testing.T) {
		m, c := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(resetEv("room/lobby", "ep2", 0, protocol.ResetEpochChanged)))
		header := strings.Split(m.View(), "\n")[0]
		contains(t, header, "reset")
		c.Advance(resetShownFor)
		header = strings.Split(m.View(), "\n")[0]
		lacks(t, header, "reset")
	})
	t.Run("duplicates are dropped", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(roomEv(1, protocol.TypeMessage, "bob", "once"), roomEv(1, protocol.TypeMessage, "bob", "once")))
		m.Update(updates(roomEv(1, protocol.TypeMessage, "bob", "once")))
		if n := strings.Count(m.View(), "once"); n != 1 {
			t.Fatalf("message shown %d times", n)
		}
		// A new epoch after a reset starts again from low seqs.
		m.Update(updates(resetEv("room/lobby", "ep2", 0, protocol.ResetEpochChanged),
			Update{Event: &protocol.Event{Seq: 1, Epoch: "ep2", Stream: "room/lobby", Type: protocol.TypeMessage, Time: t0, User: "bob", Text: "after reset"}}))
		contains(t, m.View(), "after reset")
	})
	t.Run("connection lost and back", func(t *testing.T) {
		m, c := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(Update{Status: &Status{Stream: "room/lobby", State: client.StateReconnecting, Transport: "ws", Attempt: 1, RetryIn: 2 * time.Second, Err: errBoom}}))
		v := m.View()
		contains(t, v, "reconnecting in 2s, try 1", "connection lost: boom; reconnecting")
		c.Advance(2 * time.Second)
		contains(t, m.View(), "reconnecting now, try 1")
		m.Update(updates(status("room/lobby", client.StateConnected, "longpoll")))
		v = m.View()
		contains(t, v, "● connected · longpoll", "reconnected over longpoll")
	})
	t.Run("the tasks stream's state does not change the header", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(Update{Status: &Status{Stream: "tasks", State: client.StateReconnecting, RetryIn: time.Second}}))
		contains(t, strings.Split(m.View(), "\n")[0], "● connected · ws")
	})
	t.Run("progress shows live tasks in a strip", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		before := m.pane.height
		m.Update(updates(taskEv(1, t0.Add(time.Second), task("t1", "build", protocol.TaskRunning, 10, 100, 0))))
		contains(t, m.View(), "build", " 10%", "10/100")
		if m.pane.height != before-1 {
			t.Fatalf("pane height %d, want %d", m.pane.height, before-1)
		}
		m.Update(updates(taskEv(2, t0.Add(2*time.Second), task("t1", "build", protocol.TaskSucceeded, 100, 100, 0))))
		lacks(t, m.View(), "build")
		if m.pane.height != before {
			t.Fatalf("pane height %d after the task ended, want %d", m.pane.height, before)
		}
	})
	t.Run("a tasks reset relists the tasks", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(taskEv(1, t0, task("t1", "old", protocol.TaskRunning, 1, 10, 0))))
		gen := m.taskGen
		m.Update(updates(resetEv("tasks", "ep2", 0, protocol.ResetEpochChanged)))
		if m.taskGen != gen+1 {
			t.Fatal("no task listing after a reset")
		}
		m.Update(tasksMsg{Gen: m.taskGen, Tasks: []protocol.Task{task("t2", "fresh", protocol.TaskRunning, 1, 10, 0)}})
		v := m.View()
		contains(t, v, "fresh")
		lacks(t, v, "old")
	})
	t.Run("closed channel", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		_, cmd := m.Update(updatesMsg{Closed: true})
		contains(t, m.View(), "✗ closed")
		if cmd != nil {
			if _, ok := cmd().(updatesMsg); ok {
				t.Fatal("the feed was re-armed after the channel closed")
			}
		}
		if m.Result() != ErrClosed {
			t.Fatalf("Result = %v", m.Result())
		}
	})
	t.Run("escape codes in messages are not drawn", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(roomEv(1, protocol.TypeMessage, "bob", "\x1b[2Jclear\x1b]0;title\x07 me\tnow\x00")))
		v := m.View()
		lacks(t, v, "\x1b", "\x07", "\x00")
		contains(t, v, "clear me    now")
	})
	t.Run("presence fetch fails, then is retried", func(t *testing.T) {
		m, c := newChat(t, newFakeConn(), 80, 20)
		m.Update(presenceMsg{Gen: m.people.gen, Err: errBoom})
		contains(t, m.View(), "could not load")
		gen := m.people.gen
		m.Update(updates(roomEv(1, protocol.TypeMessage, "bob", "x")))
		if m.people.gen != gen {
			t.Fatal("retried at once")
		}
		c.Advance(retryAfter)
		m.Update(updates(roomEv(2, protocol.TypeMessage, "bob", "y")))
		if m.people.gen != gen+1 {
			t.Fatal("not retried after the wait")
		}
	})
}

func TestChatKeys(t *testing.T) {
	t.Run("enter sends and clears the line", func(t *testing.T) {
		conn := newFakeConn()
		m, _ := newChat(t, conn, 80, 20)
		connect(m)
		typeText(m, "hello there")
		_, cmd := m.Update(keyMsg("enter"))
		if cmd == nil {
			t.Fatal("enter returned no command")
		}
		contains(t, m.View(), "sending…")
		m.Update(cmd())
		if got := strings.Join(conn.sent, "|"); got != "hello there" {
			t.Fatalf("sent %q", got)
		}
		if m.input.Value() != "" {
			t.Fatalf("input still %q", m.input.Value())
		}
		lacks(t, m.View(), "sending…")
	})
	t.Run("empty enter does nothing", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		typeText(m, "   ")
		if _, cmd := m.Update(keyMsg("enter")); cmd != nil {
			t.Fatal("blank line sent")
		}
	})
	t.Run("enter while sending waits", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		typeText(m, "one")
		m.Update(keyMsg("enter"))
		if _, cmd := m.Update(keyMsg("enter")); cmd != nil {
			t.Fatal("sent twice")
		}
	})
	t.Run("a failed send stays in the input", func(t *testing.T) {
		m, conn := failedSend(t, "keep me")
		if m.input.Value() != "keep me" {
			t.Fatalf("input = %q", m.input.Value())
		}
		contains(t, m.View(), "✗ not sent: boom; enter to retry")
		// Retrying works once the server is back.
		conn.sendErr = nil
		send(m)
		if len(conn.sent) != 1 || conn.sent[0] != "keep me" || m.input.Value() != "" {
			t.Fatalf("retry: sent %v, input %q", conn.sent, m.input.Value())
		}
		lacks(t, m.View(), "not sent")
	})
	t.Run("a retry sends the same id; another text another", func(t *testing.T) {
		m, conn := failedSend(t, "again")
		send(m)
		conn.sendErr = nil
		send(m)
		typeText(m, "next")
		send(m)
		ids := conn.ids
		if len(ids) != 4 || ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] || ids[3] == ids[0] {
			t.Fatalf("ids %q; want the three tries of one text under one id, the next text under another", ids)
		}
	})
	t.Run("a failed send whose message comes back is sent", func(t *testing.T) {
		m, conn := failedSend(t, "stored after all")
		contains(t, m.View(), "not sent")
		ev := roomEv(1, protocol.TypeMessage, "ann", "stored after all")
		ev.Event.ID = conn.ids[0]
		m.Update(updates(ev))
		lacks(t, m.View(), "not sent")
		if m.input.Value() != "" {
			t.Fatalf("input %q; the message is in the room", m.input.Value())
		}
	})
	t.Run("editing clears the send error", func(t *testing.T) {
		m, _ := failedSend(t, "x")
		typeText(m, "y")
		lacks(t, m.View(), "not sent")
	})
	t.Run("text typed while sending is kept", func(t *testing.T) {
		conn := newFakeConn()
		m, _ := newChat(t, conn, 80, 20)
		typeText(m, "first")
		_, cmd := m.Update(keyMsg("enter"))
		typeText(m, "+")
		m.Update(cmd())
		if m.input.Value() != "first+" {
			t.Fatalf("input = %q", m.input.Value())
		}
	})
	t.Run("up and down walk the history", func(t *testing.T) {
		conn := newFakeConn()
		m, _ := newChat(t, conn, 80, 20)
		for _, s := range []string{"one", "two"} {
			typeText(m, s)
			send(m)
		}
		typeText(m, "draft")
		steps := []struct{ key, want string }{
			{"up", "two"}, {"up", "one"}, {"up", "one"}, {"down", "two"}, {"down", "draft"}, {"down", "draft"},
		}
		for _, s := range steps {
			m.Update(keyMsg(s.key))
			if got := m.input.Value(); got != s.want {
				t.Fatalf("after %s: %q, want %q", s.key, got, s.want)
			}
		}
	})
	t.Run("pgup and pgdn scroll; new lines while scrolled up are counted", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		us := messages(40, "line")
		m.Update(updates(us...))
		contains(t, m.View(), "line 40")
		m.Update(keyMsg("pgup"))
		lacks(t, m.View(), "line 40")
		m.Update(updates(roomEv(41, protocol.TypeMessage, "bob", "line 41")))
		contains(t, m.View(), "↓ 1 new")
		m.Update(keyMsg("pgdown"))
		m.Update(keyMsg("pgdown"))
		v := m.View()
		contains(t, v, "line 41")
		lacks(t, v, "new (pgdn)")
		// At the bottom, new lines keep it there.
		m.Update(updates(roomEv(42, protocol.TypeMessage, "bob", "line 42")))
		contains(t, m.View(), "line 42")
	})
	t.Run("mouse wheel scrolls", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		us := messages(40, "line")
		m.Update(updates(us...))
		m.Update(tea.MouseMsg{Action: tea.MouseActionPress, Button: tea.MouseButtonWheelUp})
		if m.pane.AtBottom() {
			t.Fatal("wheel up did not scroll")
		}
		for range 5 {
			m.Update(tea.MouseMsg{Action: tea.MouseActionPress, Button: tea.MouseButtonWheelDown})
		}
		if !m.pane.AtBottom() {
			t.Fatal("wheel down did not come back")
		}
	})
	for _, k := range []string{"esc", "ctrl+c"} {
		t.Run(k+" quits", func(t *testing.T) {
			m, _ := newChat(t, newFakeConn(), 80, 20)
			_, cmd := m.Update(keyMsg(k))
			if !isQuit(cmd) {
				t.Fatal("did not quit")
			}
			if m.View() != "" || m.Result() != nil {
				t.Fatalf("after quit: view %q, result %v", m.View(), m.Result())
			}
		})
	}
}

func TestChatCommands(t *testing.T) {
	run := func(t *testing.T, line string) (*ChatModel, *fakeConn, tea.Cmd) {
		conn := newFakeConn()
		m, _ := newChat(t, conn, 100, 20)
		connect(m)
		typeText(m, line)
		_, cmd := m.Update(keyMsg("enter"))
		return m, conn, cmd
	}
	t.Run("/quit", func(t *testing.T) {
		_, _, cmd := run(t, "/quit")
		if !isQuit(cmd) {
			t.Fatal("did not quit")
		}
	})
	t.Run("/users", func(t *testing.T) {
		m, conn, _ := run(t, "/users")
		contains(t, m.View(), "here (2): alice, bob")
		if len(conn.sent) != 0 || m.input.Value() != "" {
			t.Fatal("a command was sent or left in the input")
		}
	})
	t.Run("/help", func(t *testing.T) {
		m, _, _ := run(t, "/help")
		contains(t, m.View(), "commands: /users", "keys: enter send")
	})
	t.Run("/clear", func(t *testing.T) {
		m, _, _ := run(t, "/clear")
		if m.pane.Len() != 0 {
			t.Fatalf("%d lines left", m.pane.Len())
		}
	})
	t.Run("unknown", func(t *testing.T) {
		m, _, _ := run(t, "/frobnicate now")
		contains(t, m.View(), "unknown command /frobnicate; try /help")
	})
	t.Run("// sends a slash", func(t *testing.T) {
		m, conn, cmd := run(t, "//shrug")
		m.Update(cmd())
		if len(conn.sent) != 1 || conn.sent[0] != "/shrug" {
			t.Fatalf("sent %v", conn.sent)
		}
	})
	t.Run("commands go into the history", func(t *testing.T) {
		m, _, _ := run(t, "/users")
		m.Update(keyMsg("up"))
		if m.input.Value() != "/users" {
			t.Fatalf("input = %q", m.input.Value())
		}
	})
}

func TestChatResize(t *testing.T) {
	m, _ := newChat(t, newFakeConn(), 80, 20)
	connect(m)
	m.Update(updates(roomEv(1, protocol.TypeMessage, "bob", strings.Repeat("word ", 30))))
	for _, size := range [][2]int{{120, 30}, {50, 12}, {30, 8}, {80, 20}} {
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		v := m.View()
		lines := strings.Split(v, "\n")
		if len(lines) != size[1] {
			t.Fatalf("%v: %d lines", size, len(lines))
		}
		for i, l := range lines {
			if w := lipgloss.Width(l); w != size[0] {
				t.Fatalf("%v: line %d is %d wide: %q", size, i, w, l)
			}
		}
	}
}

func TestChatBurst(t *testing.T) {
	conn := newFakeConn()
	c := &clock{now: t0}
	m := NewChatModel(ChatConfig{Conn: conn, Room: "lobby", User: "alice", Scrollback: 500, Location: time.UTC, Common: Common{Server: "s", Now: c.Now}})
	open(m, 80, 20)
	us := messages(5000, "burst")
	m.Update(updates(us[:2500]...))
	m.Update(updates(us[2500:]...))
	if got := m.pane.Len(); got != 500 {
		t.Fatalf("pane keeps %d lines, want the scrollback of 500", got)
	}
	v := m.View()
	contains(t, v, "burst 5000")
	if !m.pane.AtBottom() {
		t.Fatal("not at the bottom after a burst")
	}
	// Scrolled up, the view stays on the same lines while old ones drop.
	m.Update(keyMsg("pgup"))
	top := strings.Split(m.pane.View(), "\n")[0]
	m.Update(updates(roomEv(5001, protocol.TypeMessage, "bob", "burst 5001")))
	if got := strings.Split(m.pane.View(), "\n")[0]; got != top {
		t.Fatalf("view moved from %q to %q", top, got)
	}
}

func TestWaitForUpdatesBatches(t *testing.T) {
	ch := make(chan Update, 10)
	for i := range 5 {
		ch <- roomEv(uint64(i+1), protocol.TypeMessage, "bob", "x")
	}
	msg := waitForUpdates(ch)().(updatesMsg)
	if len(msg.Updates) != 5 || msg.Closed {
		t.Fatalf("got %d updates, closed %v; want 5 in one message", len(msg.Updates), msg.Closed)
	}
	ch <- roomEv(6, protocol.TypeMessage, "bob", "x")
	close(ch)
	msg = waitForUpdates(ch)().(updatesMsg)
	if len(msg.Updates) != 1 || !msg.Closed {
		t.Fatalf("got %d updates, closed %v; want 1 and closed", len(msg.Updates), msg.Closed)
	}
	msg = waitForUpdates(ch)().(updatesMsg)
	if len(msg.Updates) != 0 || !msg.Closed {
		t.Fatalf("after close: %+v", msg)
	}
	if waitForUpdates(nil) != nil {
		t.Fatal("a nil channel gave a command")
	}
}

func TestChatSendScrollsToTheBottom(t *testing.T) {
	m, _ := newChat(t, newFakeConn(), 80, 20)
	connect(m)
	us := messages(40, "line")
	m.Update(updates(us...))
	m.Update(keyMsg("pgup"))
	m.Update(updates(roomEv(41, protocol.TypeMessage, "bob", "unseen")))
	typeText(m, "reply")
	m.Update(keyMsg("enter"))
	if !m.pane.AtBottom() || m.pane.Unseen() != 0 {
		t.Fatal("sending left the pane scrolled up")
	}
	contains(t, m.View(), "unseen")
}

// BenchmarkChatBurst measures one frame of a burst: 100 messages applied
// to a full 10,000-line scrollback, then drawn.
func BenchmarkChatBurst(b *testing.B) {
	c := &clock{now: t0}
	m := NewChatModel(ChatConfig{Conn: newFakeConn(), Room: "lobby", User: "alice", Location: time.UTC, Common: Common{Server: "s", Now: c.Now}})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	seq := uint64(0)
	batch := func(n int) updatesMsg {
		us := make([]Update, n)
		for i := range us {
			seq++
			us[i] = roomEv(seq, protocol.TypeMessage, "bob", fmt.Sprintf("message number %d with some words in it", seq))
		}
		return updates(us...)
	}
	m.Update(batch(DefaultScrollback))
	b.ResetTimer()
	for range b.N {
		m.Update(batch(100))
		_ = m.View()
	}
}

// TestChatTextInOneChunk: text that arrives in one read is text, whatever
// words it holds; single keys keep their bindings.
func TestChatTextInOneChunk(t *testing.T) {
	sendLine := func(t *testing.T, m *ChatModel, conn *fakeConn) string {
		t.Helper()
		_, cmd := m.Update(keyMsg("enter"))
		if cmd == nil {
			t.Fatal("enter sent nothing")
		}
		m.Update(cmd())
		if len(conn.sent) == 0 {
			t.Fatal("nothing sent")
		}
		return conn.sent[len(conn.sent)-1]
	}
	for _, text := range []string{
		"go down now",
		"up and away",
		"scroll down and press esc",
		"home end left right delete backspace tab pgup pgdown enter ctrl+c",
	} {
		t.Run(text, func(t *testing.T) {
			conn := newFakeConn()
			m, _ := newChat(t, conn, 80, 20)
			connect(m)
			typeText(m, "an old line")
			sendLine(t, m, conn)
			for _, cmd := range typeChunks(m, text) {
				if isQuit(cmd) {
					t.Fatal("text quit the chat")
				}
			}
			if got := m.input.Value(); got != text {
				t.Fatalf("input = %q, want %q", got, text)
			}
			if got := sendLine(t, m, conn); got != text {
				t.Fatalf("sent %q, want %q", got, text)
			}
			// The keys themselves still work.
			m.Update(keyMsg("up"))
			if got := m.input.Value(); got != text {
				t.Fatalf("up recalled %q, want %q", got, text)
			}
			if _, cmd := m.Update(keyMsg("esc")); !isQuit(cmd) {
				t.Fatal("esc did not quit")
			}
		})
	}
	t.Run("a bracketed paste", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		for _, word := range []string{"esc", "q", "up"} {
			if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(word), Paste: true}); isQuit(cmd) {
				t.Fatalf("pasting %q quit", word)
			}
		}
		if got := m.input.Value(); got != "escqup" {
			t.Fatalf("input = %q", got)
		}
	})
	t.Run("a chunk clears the send error", func(t *testing.T) {
		m, _ := failedSend(t, "x")
		contains(t, m.View(), "not sent")
		typeChunks(m, " more")
		lacks(t, m.View(), "not sent")
	})
}

// TestChatProgramReadsChunksAsText feeds a chat program raw terminal input,
// as a fast typist or a paste without bracketed paste delivers it, through
// Bubble Tea's own input reader.
func TestChatProgramReadsChunksAsText(t *testing.T) {
	conn := newFakeConn()
	defer close(conn.ch)
	c := &clock{now: t0}
	m := NewChatModel(ChatConfig{Conn: conn, Room: "lobby", User: "alice", Location: time.UTC, Common: Common{Server: "s", Now: c.Now}})
	in, typist := io.Pipe()
	p := tea.NewProgram(m, tea.WithInput(in), tea.WithOutput(io.Discard), tea.WithoutSignals())
	type result struct {
		m   tea.Model
		err error
	}
	done := make(chan result, 1)
	go func() {
		final, err := p.Run()
		done <- result{final, err}
	}()
	const text = "scroll down and press esc"
	if _, err := typist.Write([]byte(text + "\r")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill) // ends the program if the test ends first
	testwait.Until(t, 10*time.Second, 5*time.Millisecond, func() error {
		select {
		case r := <-done:
			t.Fatalf("the program ended before sending (err %v)", r.err)
		default:
		}
		if conn.calls(func() int { return len(conn.sent) }) == 0 {
			return errors.New("nothing was sent")
		}
		return nil
	})
	if _, err := typist.Write([]byte{0x03}); err != nil { // ctrl+c
		t.Fatal(err)
	}
	r, _ := testwait.Recv(t, 10*time.Second, done, "end of the program after ctrl+c")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := strings.Join(conn.sent, "|"); got != text {
		t.Fatalf("sent %q, want %q", got, text)
	}
	if res := r.m.(*ChatModel).Result(); res != nil {
		t.Fatalf("Result = %v", res)
	}
}

func TestChatPresenceAfterReconnect(t *testing.T) {
	drop := Update{Status: &Status{Stream: "room/lobby", State: client.StateReconnecting, Transport: "ws", Attempt: 1, RetryIn: time.Second, Err: errDropped}}
	t.Run("the first connection does not refetch", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		gen := m.people.gen
		m.Update(updates(status("room/lobby", client.StateConnected, "ws")))
		if m.people.gen != gen {
			t.Fatal("presence fetched again on the first connection")
		}
	})
	t.Run("coming back refetches, and the answer is the truth", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(drop))
		gen := m.people.gen
		m.Update(updates(status("room/lobby", client.StateConnecting, "ws")))
		if m.people.gen != gen {
			t.Fatal("fetched while still connecting")
		}
		m.Update(updates(status("room/lobby", client.StateConnected, "sse"), roomEv(10, protocol.TypeLogin, "carol", "")))
		if m.people.gen != gen+1 {
			t.Fatalf("no presence fetch after the reconnect (gen %d -> %d)", gen, m.people.gen)
		}
		// bob left while the connection was down; carol came after it was back.
		m.Update(presenceMsg{Gen: m.people.gen, Users: []string{"alice"}})
		if got := strings.Join(m.people.Users(), ","); got != "alice,carol" {
			t.Fatalf("users = %s, want alice,carol", got)
		}
		contains(t, m.View(), "Here (2)")
	})
	t.Run("a reconnect and a reset in one batch fetch once", func(t *testing.T) {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		m.Update(updates(drop))
		gen := m.people.gen
		m.Update(updates(status("room/lobby", client.StateConnected, "ws"), resetEv("room/lobby", "ep2", 0, protocol.ResetEpochChanged)))
		if m.people.gen != gen+1 {
			t.Fatalf("gen %d -> %d, want one fetch", gen, m.people.gen)
		}
	})
}

// TestChatProgramPresenceAfterReconnect: a server that comes back after a
// restart knows only who came back; the list follows it.
func TestChatProgramPresenceAfterReconnect(t *testing.T) {
	tm, conn := chatProgram(t, "s")

	conn.ch <- status("room/lobby", client.StateConnected, "ws")
	screentest.WaitFor(t, tm, "Here (2)", "● bob")
	conn.mu.Lock()
	conn.users = []string{"alice"}
	conn.mu.Unlock()
	conn.ch <- Update{Status: &Status{Stream: "room/lobby", State: client.StateReconnecting, Transport: "ws", Attempt: 1, RetryIn: time.Second, Err: errDropped}}
	conn.ch <- status("room/lobby", client.StateConnected, "ws")
	screentest.WaitFor(t, tm, "connection lost", "reconnected over ws", "Here (1)")

	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(screentest.Timeout))
	final := tm.FinalModel(t).(*ChatModel)
	if got := strings.Join(final.people.Users(), ","); got != "alice" {
		t.Fatalf("users = %s, want alice", got)
	}
	if n := conn.calls(func() int { return conn.presences }); n != 2 {
		t.Fatalf("presence fetched %d times, want twice", n)
	}
}

func TestChatLongText(t *testing.T) {
	t.Run("a long paste is kept and sent whole", func(t *testing.T) {
		conn := newFakeConn()
		m, _ := newChat(t, conn, 80, 20)
		long := strings.Repeat("abcde", 1000)
		m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(long), Paste: true})
		if n := len(m.input.Value()); n != len(long) {
			t.Fatalf("input holds %d characters, want %d", n, len(long))
		}
		send(m)
		if len(conn.sent) != 1 || conn.sent[0] != long {
			t.Fatalf("sent %d messages, the first of %d bytes", len(conn.sent), len(conn.sent[0]))
		}
	})
	t.Run("the server's refusal says why, and keeps the text", func(t *testing.T) {
		conn := newFakeConn()
		conn.sendErr = fmt.Errorf("publish to room lobby: %w", &protocol.Error{Status: 413, Code: protocol.CodeTextTooLong,
			Message: "the message text is 5000 bytes; the limit is 4096"})
		m, _ := newChat(t, conn, 80, 20)
		long := strings.Repeat("x", 5000)
		m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(long), Paste: true})
		send(m)
		v := m.View()
		contains(t, v, "✗ not sent: the message text is 5000 bytes; the limit is 4096")
		lacks(t, v, "enter to retry")
		if m.input.Value() != long {
			t.Fatal("the text was not kept")
		}
	})
	t.Run("a proxy's 404 is not offered again: sending again gets the same answer", func(t *testing.T) {
		conn := newFakeConn()
		conn.sendErr = fmt.Errorf("publish to room lobby: %w", &protocol.Error{Status: 404, Message: "unexpected answer 404 Not Found"})
		m, _ := newChat(t, conn, 80, 20)
		typeText(m, "hi")
		send(m)
		v := m.View()
		contains(t, v, "✗ not sent: unexpected answer from the server (404 Not Found)")
		lacks(t, v, "enter to retry")
	})
}

// failedSend returns an 80×20 chat whose send of text has failed with
// errBoom, and its connection.
func failedSend(t *testing.T, text string) (*ChatModel, *fakeConn) {
	t.Helper()
	conn := newFakeConn()
	conn.sendErr = errBoom
	m, _ := newChat(t, conn, 80, 20)
	typeText(m, text)
	send(m)
	return m, conn
}

func TestChatJumps(t *testing.T) {
	setup := func(t *testing.T) *ChatModel {
		m, _ := newChat(t, newFakeConn(), 80, 20)
		connect(m)
		us := messages(40, "line")
		m.Update(updates(us...))
		return m
	}
	t.Run("end goes to the newest line", func(t *testing.T) {
		m := setup(t)
		m.Update(keyMsg("pgup"))
		m.Update(keyMsg("pgup"))
		m.Update(updates(roomEv(41, protocol.TypeMessage, "bob", "line 41")))
		contains(t, m.View(), "↓ 1 new")
		m.Update(keyMsg("end"))
		v := m.View()
		if !m.pane.AtBottom() || m.pane.Unseen() != 0 {
			t.Fatal("end did not reach the bottom")
		}
		contains(t, v, "line 41")
		lacks(t, v, "new (pgdn)")
	})
	t.Run("ctrl+home goes to the oldest line, ctrl+end back", func(t *testing.T) {
		m := setup(t)
		m.Update(keyMsg("ctrl+home"))
		contains(t, m.View(), "line 1 ")
		lacks(t, m.View(), "line 40")
		m.Update(keyMsg("ctrl+end"))
		contains(t, m.View(), "line 40")
	})
	t.Run("home and end still move the cursor in the input", func(t *testing.T) {
		m := setup(t)
		m.Update(keyMsg("pgup"))
		typeText(m, "abc")
		m.Update(keyMsg("home"))
		if m.pane.AtBottom() {
			t.Fatal("home scrolled the pane")
		}
		typeText(m, "x")
		m.Update(keyMsg("end"))
		typeText(m, "y")
		if got := m.input.Value(); got != "xabcy" {
			t.Fatalf("input = %q, want xabcy", got)
		}
	})
}
