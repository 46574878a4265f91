package tui

import (
	"context"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/pushd/push/protocol"
)

// listWidth is the width of the room list (0: hidden, with one room).
func (m *RoomsModel) listWidth() int {
	if len(m.tabs) < 2 || m.width < 50 {
		return 0
	}
	return min(max(14, m.width/6), 22)
}

// layout gives every room's screen the space beside the list.
func (m *RoomsModel) layout() {
	if m.width == 0 {
		return
	}
	w := m.width
	if lw := m.listWidth(); lw > 0 {
		w -= lw + 1
	}
	for _, t := range m.tabs {
		t.chat.Update(tea.WindowSizeMsg{Width: w, Height: m.height})
	}
}

// View implements tea.Model.
func (m *RoomsModel) View() string {
	if m.quit || m.width == 0 {
		return ""
	}
	screen := m.tabs[m.cur].chat.View()
	lw := m.listWidth()
	if lw == 0 {
		return screen
	}
	list := m.listView(lw)
	rows := strings.Split(screen, "\n")
	var b strings.Builder
	for i, row := range rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		l := ""
		if i < len(list) {
			l = list[i]
		}
		b.WriteString(Pad(l, lw))
		b.WriteString(m.cfg.Styles.Border.Render("│"))
		b.WriteString(row)
	}
	return b.String()
}

// listView draws the room list, one line a room, w wide, as many lines
// as the screen: the rooms joined with their numbers, unread messages and
// mentions, then the rooms in use not joined, with how many are there,
// and the keys at the bottom.
func (m *RoomsModel) listView(w int) []string {
	st := m.cfg.Styles
	lines := []string{st.Dim.Bold(true).Render(Pad(" Rooms", w))}
	for i, t := range m.tabs {
		num := " "
		if i < 9 {
			num = fmt.Sprint(i + 1)
		}
		var counts string
		if t.mentions > 0 {
			counts += st.Mention.Render(fmt.Sprintf("@%d", t.mentions))
		}
		if t.unread > 0 {
			if counts != "" {
				counts += " "
			}
			counts += st.Accent.Render(fmt.Sprint(t.unread))
		}
		name := "#" + clean(t.chat.room, false)
		room := max(w-3-lipgloss.Width(counts)-1, 3)
		name = ansi.Truncate(name, room, "…")
		line := num + " " + name
		switch {
		case i == m.cur:
			line = st.Selected.Render(Pad("›"+line, w-lipgloss.Width(counts)-1)) + " " + counts
		case t.unread > 0:
			line = " " + st.Header.Bold(true).Render(line)
			line = Pad(line, w-lipgloss.Width(counts)-1) + " " + counts
		default:
			line = " " + st.Dim.Render(line)
		}
		lines = append(lines, line)
	}
	var others []protocol.RoomInfo
	for _, r := range m.others {
		if m.tab(r.Name) == nil {
			others = append(others, r)
		}
	}
	foot := []string{st.Dim.Render(" alt+1..9"), st.Dim.Render(" ctrl+n/p")}
	if len(others) > 0 {
		lines = append(lines, "", st.Dim.Bold(true).Render(" /join"))
		for _, r := range others {
			if len(lines) >= m.height-len(foot) {
				break
			}
			count := fmt.Sprint(r.Present)
			lines = append(lines, st.Dim.Render(Pad("   #"+ansi.Truncate(clean(r.Name, false), w-6-len(count), "…"), w-len(count)-1)+count))
		}
	}
	for len(lines) < m.height-len(foot) {
		lines = append(lines, "")
	}
	return append(lines, foot...)
}

// roomLink is one room's ChatConn on a RoomsConn. Its updates come from
// the RoomsModel, not from a channel of its own.
type roomLink struct {
	conn RoomsConn
	room string
}

func (l roomLink) Updates() <-chan Update { return nil }

func (l roomLink) Send(ctx context.Context, id, text string) error {
	return l.conn.Send(ctx, l.room, id, text)
}

func (l roomLink) Presence(ctx context.Context) ([]string, error) {
	return l.conn.Presence(ctx, l.room)
}

func (l roomLink) Tasks(ctx context.Context) ([]protocol.Task, error) { return l.conn.Tasks(ctx) }

func (l roomLink) ReadBefore(ctx context.Context, before protocol.Cursor, limit int) (*protocol.Page, error) {
	return l.conn.ReadBefore(ctx, l.room, before, limit)
}
