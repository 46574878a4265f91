package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// ChatConn is the chat screen's link to the server, for one room.
type ChatConn interface {
	// Updates carries the room's events, the tasks stream's events, and
	// both subscriptions' connection state changes. The model reads it
	// until it is closed; the implementation closes it when it is done.
	// A nil channel delivers nothing: the room's updates are then handed
	// to the model by its parent (RoomsModel).
	Updates() <-chan Update
	// Send publishes text to the room as the user, as the message id:
	// sending the same id again stores the message once.
	Send(ctx context.Context, id, text string) error
	// Presence returns who is in the room.
	Presence(ctx context.Context) ([]string, error)
	// Tasks returns the tasks the server keeps, newest first.
	Tasks(ctx context.Context) ([]protocol.Task, error)
	// ReadBefore reads the room's history backwards: at most limit events
	// before the cursor, oldest first (see client.ReadBefore).
	ReadBefore(ctx context.Context, before protocol.Cursor, limit int) (*protocol.Page, error)
}

// ChatConfig sets up a ChatModel.
type ChatConfig struct {
	Common
	Conn ChatConn
	Room string
	User string
	// Scrollback is how many lines the message pane keeps (default
	// DefaultScrollback).
	Scrollback int
	// Location is the time zone of message times (default local).
	Location *time.Location
	// RoomTasksOnly has the task strip show only the tasks scoped to the
	// room; otherwise it shows those shown to everyone too (for a user
	// who may use every room). Tasks of other rooms and private ones it
	// never shows.
	RoomTasksOnly bool
}

// ChatModel is the chat screen of one room: header, messages, who is
// here, the live tasks, and the input. RoomsModel holds one per room.
type ChatModel struct {
	frame
	conn    ChatConn
	room    string
	user    string
	keys    chatKeys
	wasUp   bool      // the room has been connected at least once
	lostAt  time.Time // when the room's connection dropped; zero while up
	pane    messagePane
	people  presenceList
	input   inputLine
	tasks   taskSet
	taskGen int
	strip   taskStrip
	// roomTasksOnly: see ChatConfig.RoomTasksOnly.
	roomTasksOnly bool
	sending       string // the text being sent, "" when none
	sendErr       string
	out           outgoing
	// head is where the room stood when its events began (Backlog.Head):
	// messages up to it are history and ring no bell.
	head  protocol.Cursor
	older olderState
	// missed is the line said above the first event after left, where
	// the user left the room last time ("" once said, or none).
	missed string
	left   protocol.Cursor
}

// outgoing is the message last sent from the input line: a retry of the
// same text after a failure sends the same id, so it is stored once.
type outgoing struct {
	text, id string
	// echoed: its message came back in the room, so it is sent whatever
	// the answer to its send says.
	echoed bool
	failed bool
}

// sentMsg is the answer to a send.
type sentMsg struct {
	text, id string
	err      error
}

// NewChatModel returns the chat screen for cfg.
func NewChatModel(cfg ChatConfig) *ChatModel {
	f := newFrame(cfg.Common, cfg.Conn.Updates(), protocol.RoomStream(cfg.Room))
	st := f.Styles
	pane := newMessagePane(st, cfg.Scrollback, cfg.Location)
	return &ChatModel{
		frame:  f,
		conn:   cfg.Conn,
		room:   cfg.Room,
		user:   cfg.User,
		keys:   defaultChatKeys(),
		pane:   pane,
		people: newPresenceList(st, cfg.User, pane.loc),
		input:  newInputLine(st, "message #"+cfg.Room+"  (/help for commands)"),
		tasks:  newTaskSet(),
		strip:  newTaskStrip(st),

		roomTasksOnly: cfg.RoomTasksOnly,
	}
}

// Room returns the room's name.
func (m *ChatModel) Room() string { return m.room }

// showsTask reports whether the task strip shows t: the room's tasks,
// and unless roomTasksOnly those shown to everyone.
func (m *ChatModel) showsTask(t protocol.Task) bool {
	return t.Room == m.room || !m.roomTasksOnly && t.Room == "" && !t.Private
}

// Init starts reading updates and fetches presence and the tasks.
func (m *ChatModel) Init() tea.Cmd {
	return tea.Batch(
		m.nextUpdates(),
		m.fetchPresence(),
		m.fetchTasks(),
		m.animate(m.liveTasks()),
	)
}

// liveTasks reports whether a task is queued or running while the room
// is connected: the spinner turns for them (not for rows that may be
// stale).
func (m *ChatModel) liveTasks() bool { return m.lostAt.IsZero() && len(m.tasks.Live()) > 0 }

// fetchPresence begins a presence fetch.
func (m *ChatModel) fetchPresence() tea.Cmd {
	gen := m.people.startFetch()
	conn := m.conn
	return m.request(func(ctx context.Context) tea.Msg {
		users, err := conn.Presence(ctx)
		return presenceMsg{Gen: gen, Users: users, Err: err}
	})
}

// fetchTasks begins a task listing.
func (m *ChatModel) fetchTasks() tea.Cmd {
	m.taskGen++
	return listTasks(&m.frame, m.conn.Tasks, m.taskGen)
}

// Update implements tea.Model.
func (m *ChatModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(msg.Width, msg.Height)
		m.layout()
		return m, nil
	case tea.KeyMsg:
		return m, m.onKey(msg)
	case tea.MouseMsg:
		cmd, _ := m.pane.update(msg)
		return m, tea.Batch(cmd, m.olderAtTop(msg))
	case updatesMsg:
		cmds := m.apply(msg.Updates)
		if m.people.retryDue(m.Now()) {
			cmds = append(cmds, m.fetchPresence())
		}
		return m, tea.Batch(append(cmds, m.updated(msg.Closed, m.liveTasks()))...)
	case presenceMsg:
		m.people.set(msg, m.Now())
		return m, nil
	case tasksMsg:
		if msg.Gen == m.taskGen && msg.Err == nil {
			m.tasks.Replace(slices.DeleteFunc(msg.Tasks, func(t protocol.Task) bool { return !m.showsTask(t) }))
			m.layout()
		}
		return m, m.animate(m.liveTasks())
	case olderMsg:
		m.gotOlder(msg)
		return m, nil
	case sentMsg:
		m.sending = ""
		if msg.err != nil && !(m.out.id == msg.id && m.out.echoed) {
			m.out.failed = true
			m.sendErr = "not sent: " + errText(msg.err)
			if client.Retryable(msg.err) {
				m.sendErr += "; enter to retry"
			}
		} else {
			m.sent(msg.text)
		}
		m.layout()
		return m, nil
	case spinner.TickMsg:
		return m, m.tick(msg, m.liveTasks())
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

// onKey handles a key press: the screen's own keys, then the message
// pane's, then the input line's.
func (m *ChatModel) onKey(k tea.KeyMsg) tea.Cmd {
	if isText(k) {
		return m.edit(k) // typed or pasted text, never a key binding
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		m.quitting = true
		return tea.Quit
	case key.Matches(k, m.keys.Send):
		return m.submit()
	case key.Matches(k, m.keys.Complete):
		m.complete("@", m.people.Users())
		return nil
	}
	if cmd, used := m.pane.update(k); used {
		return tea.Batch(cmd, m.olderAtTop(k))
	}
	return m.edit(k)
}

// complete finishes the word before the cursor from names (see
// complete), when it begins with mark.
func (m *ChatModel) complete(mark string, names []string) {
	if text, ok := complete(m.input.Value(), mark, names); ok {
		m.input.SetValue(text)
		m.layout()
	}
}

// edit hands a key to the input line; a change of the text clears the
// last send error.
func (m *ChatModel) edit(k tea.KeyMsg) tea.Cmd {
	before, rows := m.input.Value(), m.input.Height()
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	if m.sendErr != "" && m.input.Value() != before {
		m.sendErr = ""
		m.layout()
	}
	if m.input.Height() != rows {
		m.layout()
	}
	return cmd
}

// submit handles Enter: a command, or a message to send.
func (m *ChatModel) submit() tea.Cmd {
	text := strings.TrimSpace(m.input.Value())
	if text == "" || m.sending != "" {
		return nil
	}
	if strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//") {
		m.input.Remember(text)
		m.input.Reset()
		m.layout()
		return m.command(text)
	}
	if strings.HasPrefix(text, "//") {
		text = text[1:] // "//x" sends "/x"
	}
	m.input.Remember(m.input.Value())
	m.pane.GotoBottom() // what you send is what you want to see
	m.sending = m.input.Value()
	m.sendErr = ""
	if !m.out.failed || m.out.text != m.sending {
		m.out = outgoing{text: m.sending, id: client.NewID()}
	}
	m.out.failed = false
	m.layout()
	conn, sent, id := m.conn, m.sending, m.out.id
	return m.request(func(ctx context.Context) tea.Msg {
		return sentMsg{text: sent, id: id, err: conn.Send(ctx, id, text)}
	})
}

// sent clears the input line of text, just sent, and any error of its
// earlier tries.
func (m *ChatModel) sent(text string) {
	m.out.failed = false
	m.sendErr = ""
	if m.input.Value() == text {
		m.input.Reset()
	}
}

// command runs a slash command.
func (m *ChatModel) command(line string) tea.Cmd {
	name, _, _ := strings.Cut(line, " ")
	now := m.Now()
	switch name {
	case "/quit", "/exit", "/q":
		m.quitting = true
		return tea.Quit
	case "/users", "/who":
		users := m.people.Users()
		text := fmt.Sprintf("here (%d): %s", len(users), strings.Join(users, ", "))
		if len(users) == 0 {
			text = "nobody is here yet"
		}
		m.pane.add(paneEntry{kind: kindSystem, at: now, text: text})
	case "/help", "/?":
		m.pane.add(
			paneEntry{kind: kindSystem, at: now, text: "commands: /users who is here · /join ROOM join or switch to a room · /part leave this room · /rooms the rooms in use · /more older messages · /clear clear the screen · /help this help · /quit leave"},
			paneEntry{kind: kindSystem, at: now, text: "keys: enter send · alt+enter (or ctrl+j) new line · tab complete @name or room · alt+1..9 or ctrl+n/ctrl+p switch room · ↑/↓ history · pgup/pgdn or mouse wheel scroll (at the top: older messages) · end newest · ctrl+home oldest · esc or ctrl+c quit · start a line with // to send a /"},
		)
	case "/more":
		return m.loadOlder()
	case "/clear":
		m.pane.Clear()
		m.older = olderState{}
	default:
		m.pane.add(paneEntry{kind: kindError, at: now, text: fmt.Sprintf("unknown command %s; try /help", name)})
	}
	return nil
}

// Result says why the screen ended: nil when the user quit.
func (m *ChatModel) Result() error {
	if m.closed && !m.quitting {
		return ErrClosed
	}
	return nil
}
