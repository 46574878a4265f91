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

// ChatConn is the chat screen's link to the server.
type ChatConn interface {
	// Updates carries the room's events, the tasks stream's events, and
	// both subscriptions' connection state changes. The model reads it
	// until it is closed; the implementation closes it when it is done.
	Updates() <-chan Update
	// Send publishes text to the room as the user, as the message id:
	// sending the same id again stores the message once.
	Send(ctx context.Context, id, text string) error
	// Presence returns who is in the room.
	Presence(ctx context.Context) ([]string, error)
	// Tasks returns the tasks the server keeps, newest first.
	Tasks(ctx context.Context) ([]protocol.Task, error)
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

// ChatModel is the chat screen: header, messages, who is here, the live
// tasks, and the input line.
type ChatModel struct {
	frame
	conn    ChatConn
	room    string
	user    string
	keys    chatKeys
	wasUp   bool // the room has been connected at least once
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
	return &ChatModel{
		frame:  f,
		conn:   cfg.Conn,
		room:   cfg.Room,
		user:   cfg.User,
		keys:   defaultChatKeys(),
		pane:   newMessagePane(st, cfg.Scrollback, cfg.Location),
		people: newPresenceList(st, cfg.User),
		input:  newInputLine(st, "message #"+cfg.Room+"  (/help for commands)"),
		tasks:  newTaskSet(),
		strip:  newTaskStrip(st),

		roomTasksOnly: cfg.RoomTasksOnly,
	}
}

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

// liveTasks reports whether a task is queued or running: the spinner
// turns for them.
func (m *ChatModel) liveTasks() bool { return len(m.tasks.Live()) > 0 }

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
		return m, cmd
	case updatesMsg:
		cmds := m.apply(msg.Updates)
		if m.people.retryDue(m.Now()) {
			cmds = append(cmds, m.fetchPresence())
		}
		if msg.Closed {
			m.endUpdates()
		} else {
			cmds = append(cmds, m.nextUpdates())
		}
		cmds = append(cmds, m.animate(m.liveTasks()))
		return m, tea.Batch(cmds...)
	case presenceMsg:
		m.people.set(msg, m.Now())
		return m, nil
	case tasksMsg:
		if msg.Gen == m.taskGen && msg.Err == nil {
			m.tasks.Replace(slices.DeleteFunc(msg.Tasks, func(t protocol.Task) bool { return !m.showsTask(t) }))
			m.layout()
		}
		return m, m.animate(m.liveTasks())
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
	}
	if cmd, used := m.pane.update(k); used {
		return cmd
	}
	return m.edit(k)
}

// edit hands a key to the input line; a change of the text clears the
// last send error.
func (m *ChatModel) edit(k tea.KeyMsg) tea.Cmd {
	before := m.input.Value()
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	if m.sendErr != "" && m.input.Value() != before {
		m.sendErr = ""
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
			paneEntry{kind: kindSystem, at: now, text: "commands: /users who is here · /clear clear the screen · /help this help · /quit leave"},
			paneEntry{kind: kindSystem, at: now, text: "keys: enter send · ↑/↓ history · pgup/pgdn or mouse wheel scroll · end newest · ctrl+home oldest · esc or ctrl+c quit · start a line with // to send a /"},
		)
	case "/clear":
		m.pane.Clear()
	default:
		m.pane.add(paneEntry{kind: kindError, at: now, text: fmt.Sprintf("unknown command %s; try /help", name)})
	}
	return nil
}

// apply applies a batch of updates in order.
func (m *ChatModel) apply(us []Update) []tea.Cmd {
	var cmds []tea.Cmd
	var lines []paneEntry
	room := protocol.RoomStream(m.room)
	tasksChanged := false
	// A presence fetch starts where the batch first calls for it, so the
	// logins and logouts after that point are applied on top of its answer
	// (the request goes out after the whole batch, so a second fetch for a
	// later point would get the same answer).
	var presence tea.Cmd
	for _, u := range us {
		if s := u.Status; s != nil {
			if s.Stream == protocol.TasksStream {
				continue // the strip shows tasks; the header shows the room
			}
			now := m.Now()
			switch {
			case s.State == client.StateReconnecting && m.link.State == client.StateConnected:
				lines = append(lines, paneEntry{kind: kindSystem, at: now, text: "connection lost: " + errText(s.Err) + "; reconnecting"})
			case s.State == client.StateConnected && m.wasUp && m.link.State != client.StateConnected:
				lines = append(lines, paneEntry{kind: kindSystem, at: now, text: "reconnected over " + s.Transport})
				// Logins and logouts while the connection was down were
				// missed, and a restarted server knows only who came back:
				// its list is the truth.
				if presence == nil {
					presence = m.fetchPresence()
				}
			case s.State == client.StateClosed:
				lines = append(lines, paneEntry{kind: kindError, at: now, text: "connection closed: " + errText(s.Err)})
			}
			if s.State == client.StateConnected {
				m.wasUp = true
			}
			m.link.set(*s, now)
			continue
		}
		e := u.Event
		if e == nil || !m.seen.fresh(e) {
			continue
		}
		switch {
		case e.Stream == protocol.TasksStream:
			switch e.Type {
			case protocol.TypeProgress:
				if e.Task != nil && m.showsTask(*e.Task) {
					m.tasks.Apply(*e.Task, e.Time)
					tasksChanged = true
				}
			case protocol.TypeReset:
				cmds = append(cmds, m.fetchTasks())
			}
		case e.Stream == room:
			switch e.Type {
			case protocol.TypeMessage:
				lines = append(lines, paneEntry{kind: kindMessage, at: e.Time, user: e.User, text: e.Text})
				if e.ID != "" && e.ID == m.out.id && !m.out.echoed {
					// What was sent from here is in the room, whatever
					// its answer said or will say.
					m.out.echoed = true
					if m.out.failed {
						m.sent(m.out.text)
					}
				}
			case protocol.TypeLogin:
				m.people.apply(e.User, true)
				lines = append(lines, paneEntry{kind: kindSystem, at: e.Time, text: "→ " + e.User + " joined"})
			case protocol.TypeLogout:
				m.people.apply(e.User, false)
				lines = append(lines, paneEntry{kind: kindSystem, at: e.Time, text: "← " + e.User + " left"})
			case protocol.TypeReset:
				now := m.Now()
				lines = append(lines, paneEntry{kind: kindSystem, at: now, text: "⟳ " + resetText(e.Reason)})
				m.link.noteReset(e.Reason, now)
				if presence == nil {
					presence = m.fetchPresence()
				}
			}
		}
	}
	if presence != nil {
		cmds = append(cmds, presence)
	}
	m.pane.add(lines...)
	if tasksChanged {
		m.layout()
	}
	return cmds
}

// resetText explains a reset to a person.
func resetText(reason string) string {
	switch reason {
	case protocol.ResetEpochChanged:
		return "reset: the server restarted without its history, so messages sent while you were away may be missing"
	case protocol.ResetRetention:
		return "reset: the server had already dropped some events you missed"
	case protocol.ResetCursorAhead:
		return "reset: the server's history is older than what you had seen"
	}
	return "reset: the server could not resume exactly where you were (" + reason + ")"
}

// sideWidth is the width of the presence list (0: hidden when narrow).
func (m *ChatModel) sideWidth() int {
	if m.width < 60 {
		return 0
	}
	return min(max(16, m.width/5), 24)
}

// paneHeight is what is left for messages after the fixed lines.
func (m *ChatModel) paneHeight() int {
	fixed := 1 + 1 + 1 + 1 + 1 // header, top rule, bottom rule, input, help
	fixed += m.strip.Height(m.tasks.Live())
	if m.sendErr != "" {
		fixed++
	}
	return max(m.height-fixed, 1)
}

// layout gives each component its size.
func (m *ChatModel) layout() {
	if m.width == 0 {
		return
	}
	side := m.sideWidth()
	paneW := m.width
	if side > 0 {
		paneW = m.width - side - 3 // " │ "
	}
	h := m.paneHeight()
	m.pane.SetSize(paneW, h)
	m.people.SetSize(side, h)
	m.strip.SetSize(m.width, 0)
	m.input.SetSize(m.width, 1)
}

// View implements tea.Model.
func (m *ChatModel) View() string {
	if m.quitting || m.width == 0 {
		return ""
	}
	st := m.Styles
	var b strings.Builder
	left := st.Title.Render("#"+clean(m.room, false)) + " " + st.User(m.user).Render(m.user) + st.Dim.Render(" @ "+m.Server)
	b.WriteString(headerLine(m.width, left, m.linkView()))
	b.WriteByte('\n')
	side := m.sideWidth()
	paneW := m.width
	if side > 0 {
		paneW = m.width - side - 3
	}
	b.WriteString(m.rule(paneW, side, "┬", ""))
	b.WriteByte('\n')
	paneView := m.pane.View()
	if m.pane.Len() == 0 {
		paneView = m.emptyPane(paneW)
	}
	paneLines := strings.Split(paneView, "\n")
	var sideLines []string
	if side > 0 {
		sideLines = strings.Split(m.people.View(), "\n")
	}
	for i, l := range paneLines {
		b.WriteString(pad(l, paneW))
		if side > 0 {
			b.WriteString(st.Border.Render(" │ "))
			if i < len(sideLines) {
				b.WriteString(sideLines[i])
			}
		}
		b.WriteByte('\n')
	}
	marker := ""
	if n := m.pane.Unseen(); n > 0 {
		marker = fmt.Sprintf(" ↓ %d new (pgdn) ", n)
	}
	b.WriteString(m.rule(paneW, side, "┴", marker))
	b.WriteByte('\n')
	if live := m.tasks.Live(); len(live) > 0 {
		b.WriteString(m.strip.View(live, m.spin.View()))
		b.WriteByte('\n')
	}
	if m.sendErr != "" {
		b.WriteString(pad(st.Error.Render("✗ "+m.sendErr), m.width))
		b.WriteByte('\n')
	}
	in := m.input.View()
	if m.sending != "" {
		in = pad(in, m.width-10) + st.Dim.Render(" sending…")
	}
	b.WriteString(pad(in, m.width))
	b.WriteByte('\n')
	b.WriteString(pad(m.help.View(m.keys), m.width))
	return b.String()
}

// emptyPane is what the pane shows before the first line: a hint.
func (m *ChatModel) emptyPane(w int) string {
	hint := "No messages in #" + clean(m.room, false) + " yet. Say hello!"
	lines := make([]string, m.pane.height)
	if len(lines) > 0 {
		mid := len(lines) / 2
		lines[mid] = m.Styles.Dim.Render(pad(strings.Repeat(" ", max(0, (w-len([]rune(hint)))/2))+hint, w))
	}
	return strings.Join(lines, "\n")
}

// rule draws a horizontal line across the screen, joining the side list's
// border with joint, with marker (if any) near its right end.
func (m *ChatModel) rule(paneW, side int, joint, marker string) string {
	st := m.Styles
	var line string
	if marker != "" && paneW > len([]rune(marker))+4 {
		mw := len([]rune(marker))
		line = st.Border.Render(strings.Repeat("─", paneW-mw-2)) + st.Accent.Render(marker) + st.Border.Render("──")
	} else {
		line = st.Border.Render(strings.Repeat("─", paneW))
	}
	if side > 0 {
		line += st.Border.Render("─" + joint + strings.Repeat("─", side+1))
	}
	return line
}

// Result says why the screen ended: nil when the user quit.
func (m *ChatModel) Result() error {
	if m.closed && !m.quitting {
		return ErrClosed
	}
	return nil
}
