package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/protocol"
)

// RoomsConn is the link to the server of the chat screen with several
// rooms.
type RoomsConn interface {
	// Updates carries the events and connection state changes of every
	// joined room and of the tasks stream, and each room's Backlog before
	// its events. The model reads it until it is closed; the
	// implementation closes it when it is done.
	Updates() <-chan Update
	// Join begins following room, as the user (present there while
	// joined); it returns at once. Joining a room already joined does
	// nothing.
	Join(room string)
	// Part stops following room.
	Part(room string)
	// Send publishes text to room as the message id (see ChatConn.Send).
	Send(ctx context.Context, room, id, text string) error
	// Presence returns who is in room.
	Presence(ctx context.Context, room string) ([]string, error)
	// Tasks returns the tasks the server keeps, newest first.
	Tasks(ctx context.Context) ([]protocol.Task, error)
	// Rooms returns the rooms in use that the user may join.
	Rooms(ctx context.Context) ([]protocol.RoomInfo, error)
	// ReadBefore reads room's history backwards (see ChatConn.ReadBefore).
	ReadBefore(ctx context.Context, room string, before protocol.Cursor, limit int) (*protocol.Page, error)
}

// RoomsConfig sets up a RoomsModel.
type RoomsConfig struct {
	Common
	Conn RoomsConn
	// Rooms are the rooms joined at the start, in order; the first is
	// shown. The caller has joined them (Conn.Join).
	Rooms []string
	User  string
	// Scrollback, Location and RoomTasksOnly are each room's (see
	// ChatConfig).
	Scrollback    int
	Location      *time.Location
	RoomTasksOnly bool
}

// RoomsModel is the chat screen with several rooms: a list of the rooms
// joined, with their unread messages and mentions, and the rooms in use
// that one may join, beside the screen of the room shown (a ChatModel
// each: its own messages, presence, scrollback, input and history).
// Alt+1..9 shows room 1 to 9, ctrl+n and ctrl+p the next and previous;
// /join ROOM joins (tab completes the name), /part leaves.
type RoomsModel struct {
	cfg      RoomsConfig
	conn     RoomsConn
	keys     roomsKeys
	tabs     []*roomTab
	cur      int
	width    int
	height   int
	others   []protocol.RoomInfo // the rooms in use, from Conn.Rooms
	listedAt time.Time           // when they were last asked for
	closed   bool
	quit     bool
	updates  <-chan Update
}

// roomTab is one joined room.
type roomTab struct {
	chat     *ChatModel
	unread   int // messages by others since the room was last shown
	mentions int // of them, those that name the user
	// resumed: the room's events began where the user left it, at left;
	// those after it were missed, and count.
	resumed bool
	left    protocol.Cursor
	head    protocol.Cursor // Backlog.Head: events up to it are history
}

// roomsKeys are the keys of the screen with several rooms.
type roomsKeys struct {
	Next, Prev, Quit key.Binding
	Nth              []key.Binding // alt+1 .. alt+9
}

func defaultRoomsKeys() roomsKeys {
	k := roomsKeys{
		Next: key.NewBinding(key.WithKeys("ctrl+n", "alt+right"), key.WithHelp("ctrl+n", "next room")),
		Prev: key.NewBinding(key.WithKeys("ctrl+p", "alt+left"), key.WithHelp("ctrl+p", "previous room")),
		Quit: key.NewBinding(key.WithKeys("ctrl+c", "esc")),
	}
	for i := 1; i <= 9; i++ {
		k.Nth = append(k.Nth, key.NewBinding(key.WithKeys(fmt.Sprintf("alt+%d", i))))
	}
	return k
}

// roomMsg is a message for the screen of one room: the answer to a
// command that screen gave.
type roomMsg struct {
	room string
	msg  tea.Msg
}

// roomListMsg is the answer to Conn.Rooms.
type roomListMsg struct {
	rooms []protocol.RoomInfo
	err   error
}

// roomListEvery is how often, at most, the list of rooms in use is
// fetched again: when updates arrive that long after the last fetch.
const roomListEvery = 30 * time.Second

// NewRoomsModel returns the screen for cfg, showing cfg.Rooms[0].
func NewRoomsModel(cfg RoomsConfig) *RoomsModel {
	cfg.Common.SetDefaults()
	m := &RoomsModel{cfg: cfg, conn: cfg.Conn, keys: defaultRoomsKeys(), updates: cfg.Conn.Updates()}
	for _, room := range cfg.Rooms {
		m.tabs = append(m.tabs, m.newTab(room))
	}
	return m
}

// newTab returns the screen of room.
func (m *RoomsModel) newTab(room string) *roomTab {
	return &roomTab{chat: NewChatModel(ChatConfig{
		Common: m.cfg.Common, Conn: roomLink{m.conn, room}, Room: room, User: m.cfg.User,
		Scrollback: m.cfg.Scrollback, Location: m.cfg.Location, RoomTasksOnly: m.cfg.RoomTasksOnly,
	})}
}

// Shown returns the room shown.
func (m *RoomsModel) Shown() string { return m.tabs[m.cur].chat.room }

// Init starts every room's screen, reads updates and lists the rooms in
// use.
func (m *RoomsModel) Init() tea.Cmd {
	cmds := []tea.Cmd{waitForUpdates(m.updates), m.fetchRooms()}
	for _, t := range m.tabs {
		cmds = append(cmds, tag(t.chat.room, t.chat.Init()))
	}
	return tea.Batch(cmds...)
}

// tag makes cmd's message one for the screen of room.
func tag(room string, cmd tea.Cmd) tea.Cmd {
	if cmd == nil {
		return nil
	}
	return func() tea.Msg {
		msg := cmd()
		if msg == nil {
			return nil
		}
		return roomMsg{room: room, msg: msg}
	}
}

// fetchRooms begins a listing of the rooms in use.
func (m *RoomsModel) fetchRooms() tea.Cmd {
	m.listedAt = m.cfg.Now()
	conn, timeout := m.conn, m.cfg.Timeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		rooms, err := conn.Rooms(ctx)
		return roomListMsg{rooms: rooms, err: err}
	}
}

// tab returns the joined room's tab, or nil.
func (m *RoomsModel) tab(room string) *roomTab {
	for _, t := range m.tabs {
		if t.chat.room == room {
			return t
		}
	}
	return nil
}

// Update implements tea.Model.
func (m *RoomsModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case updatesMsg:
		return m, m.apply(msg)
	case roomMsg:
		return m, m.forRoom(msg)
	case roomListMsg:
		if msg.err == nil {
			m.others = msg.rooms
		}
		return m, nil
	case tea.KeyMsg:
		return m, m.onKey(msg)
	}
	return m, m.toShown(msg)
}

// toShown hands msg to the room shown.
func (m *RoomsModel) toShown(msg tea.Msg) tea.Cmd {
	c := m.tabs[m.cur].chat
	_, cmd := c.Update(msg)
	return tag(c.room, cmd)
}

// forRoom hands the answer to a room's command back to that room.
func (m *RoomsModel) forRoom(rm roomMsg) tea.Cmd {
	switch msg := rm.msg.(type) {
	case tea.BatchMsg:
		cmds := make([]tea.Cmd, len(msg))
		for i, c := range msg {
			cmds[i] = tag(rm.room, c)
		}
		return tea.Batch(cmds...)
	case tea.QuitMsg:
		m.quit = true
		return tea.Quit
	}
	t := m.tab(rm.room)
	if t == nil {
		return nil // parted since
	}
	_, cmd := t.chat.Update(rm.msg)
	return tag(rm.room, cmd)
}

// apply hands each room its updates, the tasks stream's to every room,
// and counts the messages of rooms not shown.
func (m *RoomsModel) apply(msg updatesMsg) tea.Cmd {
	byRoom := make(map[*roomTab][]Update)
	for _, u := range msg.Updates {
		stream := ""
		switch {
		case u.Event != nil:
			stream = u.Event.Stream
		case u.Status != nil:
			stream = u.Status.Stream
		case u.Backlog != nil:
			stream = u.Backlog.Stream
		}
		if stream == protocol.TasksStream {
			for _, t := range m.tabs {
				byRoom[t] = append(byRoom[t], u)
			}
			continue
		}
		room, ok := strings.CutPrefix(stream, protocol.RoomStream(""))
		t := m.tab(room)
		if !ok || t == nil {
			continue // a room parted since
		}
		byRoom[t] = append(byRoom[t], u)
		m.count(t, u)
	}
	var cmds []tea.Cmd
	for _, t := range m.tabs {
		us := byRoom[t]
		if len(us) == 0 && !msg.Closed {
			continue
		}
		_, cmd := t.chat.Update(updatesMsg{Updates: us, Closed: msg.Closed})
		cmds = append(cmds, tag(t.chat.room, cmd))
	}
	if msg.Closed {
		m.closed = true
	} else {
		cmds = append(cmds, waitForUpdates(m.updates))
	}
	if m.cfg.Now().Sub(m.listedAt) >= roomListEvery {
		cmds = append(cmds, m.fetchRooms())
	}
	return tea.Batch(cmds...)
}

// count counts u in t's unread messages and mentions, when t is not
// shown: a message by someone else, live or missed since last time.
func (m *RoomsModel) count(t *roomTab, u Update) {
	if b := u.Backlog; b != nil {
		t.resumed, t.left, t.head = b.Resumed, b.Last, b.Head
		return
	}
	e := u.Event
	if t == m.tabs[m.cur] || e == nil || e.Type != protocol.TypeMessage || e.User == m.cfg.User {
		return
	}
	missed := t.resumed && e.Epoch == t.left.Epoch && e.Seq > t.left.Seq
	live := e.Epoch != t.head.Epoch || e.Seq > t.head.Seq
	if !missed && !live {
		return // history shown on joining, not news
	}
	t.unread++
	if t.chat.isMention(e) {
		t.mentions++
	}
}

// onKey handles the keys of the screen: switching rooms, leaving, and the
// commands and completion that concern rooms; the rest go to the room
// shown.
func (m *RoomsModel) onKey(k tea.KeyMsg) tea.Cmd {
	if isText(k) {
		return m.toShown(k)
	}
	for i, b := range m.keys.Nth {
		if key.Matches(k, b) {
			if i < len(m.tabs) {
				m.show(i)
			}
			return nil
		}
	}
	c := m.tabs[m.cur].chat
	switch {
	case key.Matches(k, m.keys.Quit):
		m.quit = true
		return tea.Quit
	case key.Matches(k, m.keys.Next):
		m.show((m.cur + 1) % len(m.tabs))
		return nil
	case key.Matches(k, m.keys.Prev):
		m.show((m.cur + len(m.tabs) - 1) % len(m.tabs))
		return nil
	case key.Matches(k, c.keys.Complete) && strings.HasPrefix(c.input.Value(), "/join "):
		c.complete("", m.roomNames())
		return nil
	case key.Matches(k, c.keys.Send):
		if cmd, ok := m.command(c); ok {
			return cmd
		}
	}
	return m.toShown(k)
}

// roomNames returns the rooms in use and those joined, for completion.
func (m *RoomsModel) roomNames() []string {
	var names []string
	for _, r := range m.others {
		names = append(names, r.Name)
	}
	for _, t := range m.tabs {
		if !slices.Contains(names, t.chat.room) {
			names = append(names, t.chat.room)
		}
	}
	return names
}

// command runs the room commands typed in c's input (/join, /part,
// /rooms); false when the input is not one of them.
func (m *RoomsModel) command(c *ChatModel) (tea.Cmd, bool) {
	text := strings.TrimSpace(c.input.Value())
	name, arg, _ := strings.Cut(text, " ")
	arg = strings.TrimPrefix(strings.TrimSpace(arg), "#")
	switch name {
	case "/join", "/j", "/part", "/leave", "/rooms":
	default:
		return nil, false
	}
	c.input.Remember(text)
	c.input.Reset()
	c.layout()
	say := func(kind lineKind, format string, args ...any) {
		c.pane.add(paneEntry{kind: kind, at: c.Now(), text: fmt.Sprintf(format, args...)})
	}
	switch name {
	case "/join", "/j":
		if err := protocol.ValidateName("room", arg); err != nil {
			say(kindError, "/join ROOM: a room name is 1 to %d of A-Z a-z 0-9 . _ -", protocol.MaxNameLen)
			return nil, true
		}
		return m.join(arg), true
	case "/part", "/leave":
		room := c.room
		if arg != "" {
			room = arg
		}
		if m.tab(room) == nil {
			say(kindError, "/part: you are not in #%s", room)
			return nil, true
		}
		if len(m.tabs) == 1 {
			say(kindError, "/part: #%s is the last room you are in; /quit to leave", room)
			return nil, true
		}
		m.part(room)
		return nil, true
	default: // /rooms
		var list []string
		for _, r := range m.others {
			list = append(list, fmt.Sprintf("#%s (%d here)", r.Name, r.Present))
		}
		if len(list) == 0 {
			say(kindSystem, "no rooms in use that you may join")
		} else {
			say(kindSystem, "rooms in use: %s · /join ROOM to join", strings.Join(list, ", "))
		}
		return m.fetchRooms(), true
	}
}

// join shows room, joining it first if it is not joined.
func (m *RoomsModel) join(room string) tea.Cmd {
	for i, t := range m.tabs {
		if t.chat.room == room {
			m.show(i)
			return nil
		}
	}
	t := m.newTab(room)
	m.tabs = append(m.tabs, t)
	m.show(len(m.tabs) - 1)
	conn := m.conn
	return tea.Batch(func() tea.Msg { conn.Join(room); return nil }, tag(room, t.chat.Init()))
}

// part leaves room.
func (m *RoomsModel) part(room string) {
	i := slices.IndexFunc(m.tabs, func(t *roomTab) bool { return t.chat.room == room })
	m.tabs = slices.Delete(m.tabs, i, i+1)
	if m.cur >= i && m.cur > 0 {
		m.cur--
	}
	m.show(m.cur)
	m.conn.Part(room)
}

// show shows the i-th room: its counts are read.
func (m *RoomsModel) show(i int) {
	m.cur = i
	t := m.tabs[i]
	t.unread, t.mentions = 0, 0
	m.layout()
}

// Result says why the screen ended: nil when the user quit.
func (m *RoomsModel) Result() error {
	if m.closed && !m.quit {
		return ErrClosed
	}
	return nil
}
