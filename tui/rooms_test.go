package tui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// fakeRooms implements RoomsConn with values; its updates are handed to
// the model by the test (Updates is nil).
type fakeRooms struct {
	mu     sync.Mutex
	joined []string
	parted []string
	sent   map[string][]string
	users  map[string][]string
	rooms  []protocol.RoomInfo
}

func newFakeRooms() *fakeRooms {
	return &fakeRooms{sent: map[string][]string{}, users: map[string][]string{}}
}

func (f *fakeRooms) Updates() <-chan Update { return nil }
func (f *fakeRooms) Join(room string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joined = append(f.joined, room)
}
func (f *fakeRooms) Part(room string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parted = append(f.parted, room)
}
func (f *fakeRooms) Send(_ context.Context, room, _, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent[room] = append(f.sent[room], text)
	return nil
}
func (f *fakeRooms) Presence(_ context.Context, room string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.users[room]...), nil
}
func (f *fakeRooms) Tasks(context.Context) ([]protocol.Task, error) { return nil, nil }
func (f *fakeRooms) Rooms(context.Context) ([]protocol.RoomInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]protocol.RoomInfo(nil), f.rooms...), nil
}
func (f *fakeRooms) ReadBefore(context.Context, string, protocol.Cursor, int) (*protocol.Page, error) {
	return &protocol.Page{Events: []protocol.Event{}}, nil
}

// run runs cmd and every command its messages lead to, handing the
// messages to m; spinner ticks are left out (they would turn forever).
func run(m tea.Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	msg := cmd()
	switch msg := msg.(type) {
	case nil, spinner.TickMsg:
		return
	case tea.BatchMsg:
		for _, c := range msg {
			run(m, c)
		}
		return
	case roomMsg:
		if _, ok := msg.msg.(spinner.TickMsg); ok {
			return
		}
	}
	_, next := m.Update(msg)
	run(m, next)
}

// newRooms returns a three-room screen of w×h, started.
func newRooms(t *testing.T, conn *fakeRooms, w, h int) *RoomsModel {
	t.Helper()
	c := &clock{now: t0}
	m := NewRoomsModel(RoomsConfig{
		Common: Common{Server: "http://127.0.0.1:8080", Transport: "auto", Now: c.Now},
		Conn:   conn, Rooms: []string{"lobby", "dev", "ops"}, User: "alice", Location: time.UTC,
	})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	run(m, m.Init())
	return m
}

// ev is an event of room.
func ev(room string, seq uint64, typ protocol.Type, user, text string) Update {
	u := roomEv(seq, typ, user, text)
	u.Event.Stream = protocol.RoomStream(room)
	return u
}

// roomsSession is a three-room session: lobby shown, dev with news and a
// mention, ops quiet, and a room in use to join.
func roomsSession(t *testing.T) (*RoomsModel, *fakeRooms) {
	conn := newFakeRooms()
	conn.users = map[string][]string{"lobby": {"alice", "bob", "carol"}, "dev": {"alice", "dan"}, "ops": {"alice"}}
	conn.rooms = []protocol.RoomInfo{{Name: "dev", Present: 2}, {Name: "lobby", Present: 3}, {Name: "ops", Present: 1}, {Name: "random", Present: 4}}
	m := newRooms(t, conn, 100, 24)
	var us []Update
	for _, room := range []string{"lobby", "dev", "ops"} {
		us = append(us, status(protocol.RoomStream(room), client.StateConnected, "ws"),
			Update{Backlog: &Backlog{Stream: protocol.RoomStream(room), Head: protocol.Cursor{Epoch: "ep1", Seq: 2}}})
	}
	us = append(us,
		ev("lobby", 1, protocol.TypeMessage, "bob", "morning all"),
		ev("lobby", 2, protocol.TypeMessage, "carol", "the deploy is at ten"),
		ev("dev", 1, protocol.TypeMessage, "dan", "old news"),
		ev("lobby", 3, protocol.TypeMessage, "bob", "release notes:\n- faster resume\n- rooms"),
		ev("dev", 3, protocol.TypeMessage, "dan", "alice: can you review #42?"),
		ev("dev", 4, protocol.TypeMessage, "dan", "no rush"),
	)
	run(m, func() tea.Msg { return updates(us...) })
	return m, conn
}

// TestRoomsScreen draws a session with three rooms.
func TestRoomsScreen(t *testing.T) {
	m, _ := roomsSession(t)
	requireGolden(t, m.View(), 100, 24)
}

// TestRoomsKeys: counts of the rooms not shown, alt+N and ctrl+n/ctrl+p
// to switch (which reads the counts), /join with tab completion, /part.
func TestRoomsKeys(t *testing.T) {
	m, conn := roomsSession(t)
	dev := m.tab("dev")
	if dev.unread != 2 || dev.mentions != 1 {
		t.Fatalf("dev: %d unread, %d mentions; want 2 and 1 (history not counted)", dev.unread, dev.mentions)
	}
	if lobby := m.tab("lobby"); lobby.unread != 0 {
		t.Fatalf("the room shown counts %d unread", lobby.unread)
	}
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("2"), Alt: true})
	if m.Shown() != "dev" || dev.unread != 0 || dev.mentions != 0 {
		t.Fatalf("alt+2: shown %s, counts %d/%d", m.Shown(), dev.unread, dev.mentions)
	}
	contains(t, m.View(), "#dev  alice @", "alice: can you review #42?")
	m.Update(tea.KeyMsg{Type: tea.KeyCtrlN})
	if m.Shown() != "ops" {
		t.Fatalf("ctrl+n: shown %s", m.Shown())
	}
	m.Update(tea.KeyMsg{Type: tea.KeyCtrlN})
	m.Update(tea.KeyMsg{Type: tea.KeyCtrlP})
	if m.Shown() != "ops" {
		t.Fatalf("ctrl+n, ctrl+p: shown %s", m.Shown())
	}

	// /join completes from the rooms in use, joins and shows the room.
	typeText(m, "/join ra")
	m.Update(tea.KeyMsg{Type: tea.KeyTab})
	if v := m.tabs[m.cur].chat.input.Value(); v != "/join random " {
		t.Fatalf("tab completed %q", v)
	}
	_, cmd := m.Update(keyMsg("enter"))
	run(m, cmd)
	if m.Shown() != "random" || strings.Join(conn.joined, ",") != "random" {
		t.Fatalf("shown %s, joined %v", m.Shown(), conn.joined)
	}
	contains(t, m.View(), "4 #random")
	// /join of a room joined shows it.
	typeText(m, "/join lobby")
	m.Update(keyMsg("enter"))
	if m.Shown() != "lobby" || len(conn.joined) != 1 {
		t.Fatalf("shown %s, joined %v", m.Shown(), conn.joined)
	}
	// /part leaves the room shown; not the last one.
	typeText(m, "/part")
	m.Update(keyMsg("enter"))
	if m.tab("lobby") != nil || strings.Join(conn.parted, ",") != "lobby" {
		t.Fatalf("parted %v", conn.parted)
	}
	for len(m.tabs) > 1 {
		typeText(m, "/part")
		m.Update(keyMsg("enter"))
	}
	typeText(m, "/part")
	m.Update(keyMsg("enter"))
	contains(t, m.View(), "is the last room you are in; /quit to leave")
	// An update of a room parted is dropped.
	run(m, func() tea.Msg { return updates(ev("lobby", 9, protocol.TypeMessage, "bob", "gone")) })
}

// A message that names the user rings the bell once it is live, in any
// room; not one in the history shown on joining, nor the user's own.
func TestRoomsBell(t *testing.T) {
	rings := 0
	conn := newFakeRooms()
	c := &clock{now: t0}
	m := NewRoomsModel(RoomsConfig{Common: Common{Now: c.Now, Bell: func() { rings++ }}, Conn: conn,
		Rooms: []string{"lobby", "dev"}, User: "alice"})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 24})
	run(m, m.Init())
	run(m, func() tea.Msg {
		return updates(
			Update{Backlog: &Backlog{Stream: "room/dev", Head: protocol.Cursor{Epoch: "ep1", Seq: 1}}},
			ev("dev", 1, protocol.TypeMessage, "dan", "@alice from the history"),
			ev("dev", 2, protocol.TypeMessage, "alice", "alice talks about herself"),
			ev("dev", 3, protocol.TypeMessage, "dan", "ALICE, now"),
			ev("dev", 4, protocol.TypeMessage, "dan", "malice is no mention"),
		)
	})
	if rings != 1 {
		t.Fatalf("the bell rang %d times, want once", rings)
	}
}
