package tui

import (
	"fmt"
	"strings"
)

// sideWidth is the width of the presence list (0: hidden when narrow).
func (m *ChatModel) sideWidth() int {
	if m.width < 60 {
		return 0
	}
	return min(max(16, m.width/5), 24)
}

// paneHeight is what is left for messages after the fixed lines.
func (m *ChatModel) paneHeight() int {
	fixed := 1 + 1 + 1 + 1 // header, top rule, bottom rule, help
	fixed += m.input.Height()
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
	m.input.SetSize(m.width, 0)
	h := m.paneHeight()
	m.pane.SetSize(paneW, h)
	m.people.SetSize(side, h)
	m.strip.SetSize(m.width, 0)
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
		b.WriteString(Pad(l, paneW))
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
	} else if m.older.loading {
		marker = " loading older messages… "
	}
	b.WriteString(m.rule(paneW, side, "┴", marker))
	b.WriteByte('\n')
	if live := m.tasks.Live(); len(live) > 0 {
		b.WriteString(m.strip.View(live, m.spin.View(), m.pane.loc))
		b.WriteByte('\n')
	}
	if m.sendErr != "" {
		b.WriteString(Pad(st.Error.Render("✗ "+m.sendErr), m.width))
		b.WriteByte('\n')
	}
	for i, in := range strings.Split(m.input.View(), "\n") {
		if i == 0 && m.sending != "" {
			in = Pad(in, m.width-10) + st.Dim.Render(" sending…")
		}
		b.WriteString(Pad(in, m.width))
		b.WriteByte('\n')
	}
	b.WriteString(Pad(m.help.View(m.keys), m.width))
	return b.String()
}

// emptyPane is what the pane shows before the first line: a hint.
func (m *ChatModel) emptyPane(w int) string {
	hint := "No messages in #" + clean(m.room, false) + " yet. Say hello!"
	lines := make([]string, m.pane.height)
	if len(lines) > 0 {
		mid := len(lines) / 2
		lines[mid] = m.Styles.Dim.Render(Pad(strings.Repeat(" ", max(0, (w-len([]rune(hint)))/2))+hint, w))
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
