package tui

import (
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/pushd/push/protocol"
)

// DefaultScrollback is how many lines the message pane keeps by default.
const DefaultScrollback = 10000

// lineKind is what a line of the message pane says.
type lineKind int

const (
	kindMessage lineKind = iota // someone said something
	kindSystem                  // login, logout, reset, command output
	kindError                   // something went wrong
)

// paneEntry is one line of the pane before wrapping.
type paneEntry struct {
	kind lineKind
	at   time.Time
	user string
	text string
	cur  protocol.Cursor // the event's, for lines of events
	// mention: a message that names the reader, drawn in Mention.
	mention bool
	rows    int // screen lines it took when last drawn
}

// messagePane is the scrolling list of messages and system lines of the
// chat screen, on a viewport. New lines keep it at the bottom unless the
// reader has scrolled up; then it counts them (Unseen) instead. It keeps at
// most its scrollback in entries and drops the oldest.
type messagePane struct {
	vp      viewport.Model
	keys    messagePaneKeys
	st      *Styles
	loc     *time.Location
	max     int
	entries []paneEntry
	rows    []string // the rendered lines of entries, in order
	nameW   int      // width of the user column
	unseen  int
	width   int
	height  int
}

// messagePaneKeys are the pane's keys (see update); other keys belong to
// the input line.
// Home stays the input line's (the start of the line), so the oldest line
// is ctrl+home; End both scrolls to the newest line and moves the cursor to
// the end of the input.
type messagePaneKeys struct {
	PageUp, PageDown, Top, Bottom key.Binding
}

// defaultMessagePaneKeys returns PgUp and PgDn, ctrl+home for the oldest
// line, and End (or ctrl+end) for the newest.
func defaultMessagePaneKeys() messagePaneKeys {
	return messagePaneKeys{
		PageUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup/pgdn", "scroll")),
		PageDown: key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "scroll down")),
		Top:      key.NewBinding(key.WithKeys("ctrl+home"), key.WithHelp("ctrl+home", "oldest")),
		Bottom:   key.NewBinding(key.WithKeys("end", "ctrl+end"), key.WithHelp("end", "newest")),
	}
}

// newMessagePane returns a pane keeping scrollback entries (0 means
// DefaultScrollback), showing times in loc (nil means local time).
func newMessagePane(st *Styles, scrollback int, loc *time.Location) messagePane {
	if scrollback <= 0 {
		scrollback = DefaultScrollback
	}
	if loc == nil {
		loc = time.Local
	}
	keys := defaultMessagePaneKeys()
	vp := viewport.New(0, 0)
	vp.KeyMap = viewport.KeyMap{PageUp: keys.PageUp, PageDown: keys.PageDown}
	vp.MouseWheelDelta = 3
	return messagePane{vp: vp, keys: keys, st: st, loc: loc, max: scrollback, nameW: 4}
}

// SetSize sets the pane's width and height and redraws every line.
func (p *messagePane) SetSize(w, h int) {
	bottom := p.vp.AtBottom()
	p.width, p.height = max(w, 0), max(h, 0)
	p.vp.Width, p.vp.Height = p.width, p.height
	p.rerender()
	if bottom {
		p.vp.GotoBottom()
	}
}

// Len returns how many entries the pane holds.
func (p *messagePane) Len() int { return len(p.entries) }

// Unseen returns how many messages arrived while the reader was scrolled up.
func (p *messagePane) Unseen() int { return p.unseen }

// AtBottom reports whether the last line is in view.
func (p *messagePane) AtBottom() bool { return p.vp.AtBottom() }

// GotoBottom scrolls to the last line.
func (p *messagePane) GotoBottom() {
	p.vp.GotoBottom()
	p.unseen = 0
}

// GotoTop scrolls to the first line.
func (p *messagePane) GotoTop() { p.vp.GotoTop() }

// Clear removes every line.
func (p *messagePane) Clear() {
	p.entries, p.rows, p.unseen = nil, nil, 0
	p.vp.SetContent("")
	p.vp.GotoTop()
}

// add appends entries, drops the oldest beyond the scrollback, and follows
// the bottom unless the reader scrolled up.
func (p *messagePane) add(es ...paneEntry) {
	if len(es) == 0 {
		return
	}
	follow := p.vp.AtBottom()
	widen := p.prepare(es)
	// A burst larger than the scrollback only needs its tail drawn.
	if len(es) > p.max {
		es = es[len(es)-p.max:]
	}
	for i := range es {
		if es[i].kind == kindMessage && !follow {
			p.unseen++
		}
	}
	p.entries = append(p.entries, es...)
	removed := 0
	if over := len(p.entries) - p.max; over > 0 {
		for _, e := range p.entries[:over] {
			removed += e.rows
		}
		p.entries = p.entries[over:] // append reallocates, so the dropped ones are freed
	}
	if widen {
		p.rerender()
	} else {
		if removed > 0 {
			p.rows = p.rows[min(removed, len(p.rows)):]
		}
		for i := len(p.entries) - len(es); i < len(p.entries); i++ {
			lines := p.render(&p.entries[i])
			p.rows = append(p.rows, lines...)
		}
		p.vp.SetContent(strings.Join(p.rows, "\n"))
	}
	if follow {
		p.vp.GotoBottom()
	} else if removed > 0 {
		p.vp.SetYOffset(p.vp.YOffset - removed)
	}
}

// prepare makes entries from the network safe to draw and widens the
// user column for their names; it reports whether it widened it.
func (p *messagePane) prepare(es []paneEntry) (widen bool) {
	for i := range es {
		es[i].user = clean(es[i].user, false)
		es[i].text = clean(es[i].text, true)
		if w := min(ansi.StringWidth(es[i].user), maxNameW); es[i].kind == kindMessage && w > p.nameW {
			p.nameW, widen = w, true
		}
	}
	return widen
}

// insertBefore puts es above the line of the event at cur (at the top
// when no line has it), as many as the scrollback has room for, their
// newest kept, and keeps in view what was in view. It reports false when
// the scrollback had no room for them all.
func (p *messagePane) insertBefore(cur protocol.Cursor, es ...paneEntry) bool {
	at := 0
	for i := range p.entries {
		if p.entries[i].cur == cur && cur != (protocol.Cursor{}) {
			at = i
			break
		}
	}
	room := p.max - len(p.entries)
	fits := len(es) <= room
	if !fits {
		es = es[len(es)-max(room, 0):]
	}
	if len(es) == 0 {
		return fits
	}
	above := 0
	for _, e := range p.entries[:at] {
		above += e.rows
	}
	p.prepare(es)
	p.entries = slices.Insert(p.entries, at, es...)
	offset := p.vp.YOffset
	p.rerender()
	if above <= offset {
		added := 0
		for _, e := range es {
			added += e.rows
		}
		p.vp.SetYOffset(offset + added)
	}
	return fits
}

// rerender draws every entry again (after a resize or a wider name).
func (p *messagePane) rerender() {
	p.rows = p.rows[:0]
	for i := range p.entries {
		p.rows = append(p.rows, p.render(&p.entries[i])...)
	}
	p.vp.SetContent(strings.Join(p.rows, "\n"))
}

// maxNameW bounds the user column; longer names are cut with "…".
const maxNameW = 16

// timeW is the width of "15:04:05".
const timeW = 8

// render draws one entry at the pane's width: the time, the user in their
// colour, then the text wrapped under itself.
func (p *messagePane) render(e *paneEntry) []string {
	st := p.st
	stamp := st.Dim.Render(e.at.In(p.loc).Format("15:04:05"))
	textW := p.width - timeW - 1 - p.nameW - 1
	var first, indent string
	if textW >= 12 {
		name := ""
		if e.kind == kindMessage {
			name = st.User(e.user).Render(ansi.Truncate(e.user, p.nameW, "…"))
		}
		first = stamp + " " + name + strings.Repeat(" ", p.nameW-lipgloss.Width(name)) + " "
		indent = strings.Repeat(" ", timeW+1+p.nameW+1)
	} else {
		// Too narrow for columns: "15:04 alice: text", wrapped flush left.
		textW = max(p.width, 1)
		first = ""
		if e.kind == kindMessage {
			first = st.User(e.user).Render(e.user) + ": "
		}
	}
	style := st.Text
	switch {
	case e.mention:
		style = st.Mention
	}
	switch e.kind {
	case kindSystem:
		style = st.System
	case kindError:
		style = st.Error
	}
	var out []string
	firstW := textW
	if indent == "" {
		firstW = max(textW-lipgloss.Width(first), 1)
	}
	for pi, para := range strings.Split(e.text, "\n") {
		limit := textW
		if pi == 0 {
			limit = firstW
		}
		wrapped := strings.Split(ansi.Wrap(para, limit, ""), "\n")
		for wi, w := range wrapped {
			if pi == 0 && wi == 0 {
				out = append(out, first+style.Render(w))
				continue
			}
			out = append(out, indent+style.Render(w))
		}
	}
	e.rows = len(out)
	return out
}

// update handles the pane's keys and the mouse wheel, and reports whether
// it consumed msg: PgUp and PgDn scroll a page, ctrl+home goes to the
// oldest line, End (or ctrl+end) to the newest, and the wheel scrolls. End
// is not consumed: it is the input line's key too (the end of the line).
// Anything it does not consume it leaves alone, with no command.
func (p *messagePane) update(msg tea.Msg) (tea.Cmd, bool) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, p.keys.PageUp, p.keys.PageDown):
			return p.scroll(msg), true
		case key.Matches(msg, p.keys.Top):
			p.GotoTop()
			return nil, true
		case key.Matches(msg, p.keys.Bottom):
			p.GotoBottom()
		}
	case tea.MouseMsg:
		return p.scroll(msg), true
	}
	return nil, false
}

// scroll hands msg to the viewport; reaching the bottom shows every line.
func (p *messagePane) scroll(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	p.vp, cmd = p.vp.Update(msg)
	if p.vp.AtBottom() {
		p.unseen = 0
	}
	return cmd
}

// View draws the visible lines, exactly the pane's size.
func (p messagePane) View() string {
	return p.vp.View()
}
