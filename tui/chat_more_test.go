package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// Alt+Enter (or ctrl+j) breaks the line, the input grows with its rows,
// a bracketed paste keeps its lines, and Enter sends the text whole.
func TestChatMultiLineInput(t *testing.T) {
	conn := newFakeConn()
	m, _ := newChat(t, conn, 80, 20)
	connect(m)
	typeText(m, "first")
	m.Update(tea.KeyMsg{Type: tea.KeyEnter, Alt: true})
	typeText(m, "second")
	m.Update(tea.KeyMsg{Type: tea.KeyCtrlJ})
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("pasted\nlines"), Paste: true})
	if got := m.input.Value(); got != "first\nsecond\npasted\nlines" {
		t.Fatalf("input %q", got)
	}
	view := m.View()
	if n := len(strings.Split(view, "\n")); n != 20 {
		t.Fatalf("the screen has %d lines, want 20", n)
	}
	contains(t, view, "› first", "  second", "  pasted", "  lines")
	_, cmd := m.Update(keyMsg("enter"))
	m.Update(cmd())
	if got := strings.Join(conn.sent, "|"); got != "first\nsecond\npasted\nlines" {
		t.Fatalf("sent %q", got)
	}
	if m.input.Height() != 1 {
		t.Fatalf("the input stays %d rows after sending", m.input.Height())
	}
	// Up on the first row recalls the text sent, whole.
	m.Update(keyMsg("up"))
	if got := m.input.Value(); got != "first\nsecond\npasted\nlines" {
		t.Fatalf("history recalled %q", got)
	}
}

// Tab completes @names from who is here; a message naming the user is
// drawn as a mention.
func TestChatMentions(t *testing.T) {
	conn := newFakeConn()
	m, _ := newChat(t, conn, 80, 20)
	connect(m)
	m.Update(presenceMsg{Gen: m.people.gen, Users: []string{"alice", "bob", "bobby", "carol"}})
	typeText(m, "hi @ca")
	m.Update(tea.KeyMsg{Type: tea.KeyTab})
	if got := m.input.Value(); got != "hi @carol " {
		t.Fatalf("completed %q", got)
	}
	typeText(m, "and @b")
	m.Update(tea.KeyMsg{Type: tea.KeyTab})
	if got := m.input.Value(); got != "hi @carol and @bob" {
		t.Fatalf("completed %q, want the names' common start", got)
	}
	m.Update(updates(roomEv(1, protocol.TypeMessage, "bob", "@alice look"), roomEv(2, protocol.TypeMessage, "bob", "not for you")))
	es := m.pane.entries
	if !es[len(es)-2].mention || es[len(es)-1].mention {
		t.Fatalf("mentions: %+v", es)
	}
	for _, tc := range []struct {
		text string
		want bool
	}{{"alice", true}, {"hey @Alice!", true}, {"alice.b", false}, {"malice", false}, {"(alice)", true}, {"", false}} {
		if got := mentions(tc.text, "alice"); got != tc.want {
			t.Errorf("mentions(%q) = %v", tc.text, got)
		}
	}
}

// A room resumed where the user left it says what was missed above the
// first event after that point; history before it comes first.
func TestChatBacklog(t *testing.T) {
	conn := newFakeConn()
	m, _ := newChat(t, conn, 80, 20)
	connect(m)
	m.Update(updates(
		Update{Backlog: &Backlog{Stream: "room/lobby", Head: protocol.Cursor{Epoch: "ep1", Seq: 4}, Resumed: true, Last: protocol.Cursor{Epoch: "ep1", Seq: 2}, Missed: 2}},
		roomEv(1, protocol.TypeMessage, "bob", "seen-1"),
		roomEv(2, protocol.TypeMessage, "bob", "seen-2"),
		roomEv(3, protocol.TypeMessage, "bob", "missed-3"),
		roomEv(4, protocol.TypeMessage, "bob", "missed-4"),
	))
	var texts []string
	for _, e := range m.pane.entries {
		texts = append(texts, e.text)
	}
	if got := strings.Join(texts, "|"); got != "seen-1|seen-2|── 2 new since you left ──|missed-3|missed-4" {
		t.Fatalf("pane: %s", got)
	}
	m2, _ := newChat(t, newFakeConn(), 80, 20)
	m2.Update(updates(Update{Backlog: &Backlog{Stream: "room/lobby", Head: protocol.Cursor{Epoch: "ep2", Seq: 90}, Reset: protocol.ResetEpochChanged, Skipped: 70}}))
	contains(t, m2.View(), "the server began this room's history anew", "since you were last here", "70 earlier events not shown")
}

// Scrolling up at the top reads the page before the oldest line, puts it
// above, and at the start says so; the room's epoch ending stops it.
func TestChatOlder(t *testing.T) {
	conn := newFakeConn()
	conn.older = func(before protocol.Cursor, limit int) (*protocol.Page, error) {
		p := &protocol.Page{}
		for seq := max(int(before.Seq)-2, 1); seq < int(before.Seq); seq++ {
			p.Events = append(p.Events, *roomEv(uint64(seq), protocol.TypeMessage, "bob", "old-"+string(rune('0'+seq))).Event)
		}
		if len(p.Events) > 0 && p.Events[0].Seq > 1 {
			p.Before = p.Events[0].Cursor().String()
		}
		return p, nil
	}
	m, _ := newChat(t, conn, 80, 20)
	connect(m)
	m.Update(updates(roomEv(5, protocol.TypeMessage, "bob", "new-5")))
	_, cmd := m.Update(keyMsg("pgup"))
	if cmd == nil {
		t.Fatal("pgup at the top read nothing")
	}
	contains(t, m.View(), "loading older messages")
	run(m, cmd)
	_, cmd = m.Update(keyMsg("pgup"))
	run(m, cmd)
	_, cmd = m.Update(keyMsg("pgup"))
	run(m, cmd)
	var texts []string
	for _, e := range m.pane.entries {
		if e.kind != kindSystem || strings.Contains(e.text, "start") {
			texts = append(texts, e.text)
		}
	}
	if got := strings.Join(texts, "|"); got != "── the start of #lobby ──|old-1|old-2|old-3|old-4|new-5" {
		t.Fatalf("pane: %s", got)
	}
	if want := []protocol.Cursor{{Epoch: "ep1", Seq: 5}, {Epoch: "ep1", Seq: 3}}; len(conn.reads) != len(want) || conn.reads[0] != want[0] || conn.reads[1] != want[1] {
		t.Fatalf("reads %v, want %v", conn.reads, want)
	}
	if _, cmd := m.Update(keyMsg("pgup")); cmd != nil {
		t.Fatal("read again past the start")
	}
	// While disconnected the presence list says as of when.
	m.Update(updates(Update{Status: &Status{Stream: "room/lobby", State: client.StateReconnecting, Err: errDropped}}))
	contains(t, m.View(), "as of 08:30:00", "○ bob")
}

// The single-task view asks before cancelling: y cancels, another key
// does not.
func TestFollowAsksBeforeCancelling(t *testing.T) {
	conn := newFakeConn()
	conn.task = task("t5", "build-42", protocol.TaskRunning, 4, 10, 0)
	m := NewFollowModel(FollowConfig{Conn: followConn{conn}, TaskID: "t5", Common: Common{Server: "s", Transport: "ws", Now: (&clock{now: t0}).Now}})
	open(m, 80, 20)
	m.Update(taskMsg{task: conn.task})
	if _, cmd := m.Update(keyMsg("c")); cmd != nil {
		t.Fatal("c cancelled before asking")
	}
	contains(t, m.View(), "cancel the task? y/n")
	m.Update(keyMsg("n"))
	contains(t, m.View(), "not cancelled")
	m.Update(keyMsg("c"))
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("y")})
	contains(t, m.View(), "cancelling…")
	m.Update(cmd())
	if len(conn.cancelled) != 1 {
		t.Fatalf("cancelled %v", conn.cancelled)
	}
}
