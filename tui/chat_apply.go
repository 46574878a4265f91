package tui

import (
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// apply applies a batch of updates in order.
func (m *ChatModel) apply(us []Update) []tea.Cmd {
	var cmds []tea.Cmd
	var lines []paneEntry
	room := protocol.RoomStream(m.room)
	tasksChanged, bell := false, false
	// A presence fetch starts where the batch first calls for it, so the
	// logins and logouts after that point are applied on top of its answer
	// (the request goes out after the whole batch, so a second fetch for a
	// later point would get the same answer).
	var presence tea.Cmd
	for _, u := range us {
		if b := u.Backlog; b != nil {
			if b.Stream == room {
				lines = append(lines, m.backlog(*b)...)
			}
			continue
		}
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
				// So are the tasks' changes, when the tasks stream did
				// not stay up.
				cmds = append(cmds, m.fetchTasks())
			case s.State == client.StateClosed:
				lines = append(lines, paneEntry{kind: kindError, at: now, text: "connection closed: " + errText(s.Err)})
			}
			switch {
			case s.State == client.StateConnected:
				m.wasUp = true
				m.lostAt = time.Time{}
			case m.lostAt.IsZero() && m.wasUp:
				m.lostAt = now
			}
			m.people.stale, m.strip.stale = m.lostAt, m.lostAt
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
			if e.Type != protocol.TypeReset {
				m.older.note(e.Cursor())
			}
			if m.missed != "" && e.Epoch == m.left.Epoch && e.Seq > m.left.Seq {
				lines = append(lines, paneEntry{kind: kindSystem, at: e.Time, text: m.missed})
				m.missed = ""
			}
			switch e.Type {
			case protocol.TypeMessage:
				entry := m.messageEntry(e)
				lines = append(lines, entry)
				if entry.mention && m.isLive(e) {
					bell = true
				}
				if e.ID != "" && e.ID == m.out.id && !m.out.echoed {
					// What was sent from here is in the room, whatever
					// its answer said or will say.
					m.out.echoed = true
					if m.out.failed {
						m.sent(m.out.text)
					}
				}
			case protocol.TypeLogin, protocol.TypeLogout:
				m.people.apply(e.User, e.Type == protocol.TypeLogin)
				lines = append(lines, eventEntry(e))
			case protocol.TypeReset:
				now := m.Now()
				lines = append(lines, paneEntry{kind: kindSystem, at: now, text: "⟳ " + resetText(e.Reason)})
				m.link.noteReset(e.Reason, now)
				m.older.reset()
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
	if bell && m.Bell != nil {
		m.Bell()
	}
	return cmds
}

// messageEntry is the pane's line for a message event.
func (m *ChatModel) messageEntry(e *protocol.Event) paneEntry {
	return paneEntry{kind: kindMessage, at: e.Time, user: e.User, text: e.Text, cur: e.Cursor(),
		mention: e.User != m.user && mentions(e.Text, m.user)}
}

// eventEntry is the pane's line for a login or logout.
func eventEntry(e *protocol.Event) paneEntry {
	if e.Type == protocol.TypeLogin {
		return paneEntry{kind: kindSystem, at: e.Time, text: "→ " + e.User + " joined", cur: e.Cursor()}
	}
	return paneEntry{kind: kindSystem, at: e.Time, text: "← " + e.User + " left", cur: e.Cursor()}
}

// isLive reports whether e came after the room's history (Backlog.Head).
func (m *ChatModel) isLive(e *protocol.Event) bool {
	return e.Epoch != m.head.Epoch || e.Seq > m.head.Seq
}

// isMention reports whether e is a message that names the user.
func (m *ChatModel) isMention(e *protocol.Event) bool {
	return e.Type == protocol.TypeMessage && e.User != m.user && mentions(e.Text, m.user)
}

// backlog takes where the room's events begin and returns the lines that
// say so: what was missed since last time, what is left out.
func (m *ChatModel) backlog(b Backlog) []paneEntry {
	m.head = b.Head
	now := m.Now()
	var text string
	skipped := ""
	if b.Skipped > 0 {
		skipped = fmt.Sprintf("; %d earlier %s not shown: scroll up or /more to load them", b.Skipped, plural(b.Skipped, "event", "events"))
	}
	switch {
	case b.Reset != "":
		text = "⟳ the server began this room's history anew since you were last here: what was said meanwhile is gone" + skipped
	case b.Resumed && b.Missed == 0:
		return nil // the history shown ends where the user left it
	case b.Resumed:
		// Said above the first event missed.
		m.missed, m.left = fmt.Sprintf("── %d new since you left ──%s", b.Missed, skipped), b.Last
		return nil
	case b.Skipped > 0:
		text = "⟳ " + skipped[2:]
	default:
		return nil
	}
	return []paneEntry{{kind: kindSystem, at: now, text: text}}
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

// plural returns one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
