package top

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// Conn is the screen's link to the server.
type Conn interface {
	// Updates carries the stats stream's events and the changes of its
	// connection's state; the implementation closes it when it is done.
	Updates() <-chan tui.Update
	// Subscribers returns a stream's subscribers, furthest behind first.
	Subscribers(ctx context.Context, stream string) (*protocol.SubscriberList, error)
}

// Config sets up a Model. Common's Transport is what the header shows
// until the connection says; its Styles default to plain text.
type Config struct {
	tui.Common
	Conn Conn
	// Location is where the times shown are (default time.Local).
	Location *time.Location
}

// Model is pushd top: a header of totals with sparklines, the streams
// table (sortable, filterable), the subscribers furthest behind, a tasks
// pane and a store and process pane; enter on a stream shows its
// subscribers. Stats arrive once a second on the Conn's updates; a
// stream's subscribers are asked for each second while shown.
type Model struct {
	cfg    Config
	keys   keys
	help   help.Model
	width  int
	height int
	link   tui.Status
	linkAt time.Time // when link arrived: a retry counts down from there

	stats   *protocol.Stats
	statsAt time.Time // when the stats arrived
	resetAt time.Time // when the stream last said it began anew
	hist    history
	table   table
	room    *roomView // the stream whose subscribers are shown; nil: the table
	closed  bool      // the updates channel closed
}

// updateMsg is one update from the Conn; closed when the channel has.
type updateMsg struct {
	u      tui.Update
	closed bool
}

// tickMsg comes once a second: countdowns move, and a shown stream's
// subscribers are asked for again.
type tickMsg time.Time

// New returns the screen for cfg.
func New(cfg Config) *Model {
	cfg.Common.SetDefaults()
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	h := help.New()
	h.ShortSeparator = " · "
	h.Styles.ShortKey, h.Styles.ShortDesc, h.Styles.ShortSeparator = cfg.Styles.HelpKey, cfg.Styles.HelpDesc, cfg.Styles.HelpSep
	m := &Model{cfg: cfg, keys: defaultKeys(), help: h, table: newTable()}
	m.link = tui.Status{Stream: protocol.StatsStream, State: client.StateConnecting, Transport: cfg.Transport}
	m.linkAt = cfg.Now()
	return m
}

// Init starts reading updates and the clock.
func (m *Model) Init() tea.Cmd { return tea.Batch(m.next(), tick()) }

// next waits for the next update.
func (m *Model) next() tea.Cmd {
	ch := m.cfg.Conn.Updates()
	return func() tea.Msg {
		u, ok := <-ch
		return updateMsg{u: u, closed: !ok}
	}
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
	case updateMsg:
		if msg.closed {
			m.closed = true
			m.link = tui.Status{Stream: protocol.StatsStream, State: client.StateClosed, Transport: m.link.Transport, Err: m.link.Err}
			return m, nil
		}
		m.apply(msg.u)
		return m, m.next()
	case tickMsg:
		var cmd tea.Cmd
		if m.room != nil {
			cmd = m.room.refresh(m.cfg)
		}
		return m, tea.Batch(tick(), cmd)
	case subsMsg:
		if m.room != nil {
			m.room.got(msg)
		}
	case tea.KeyMsg:
		return m, m.key(msg)
	}
	return m, nil
}

// apply takes one update: stats, a reset, or a change of the connection.
func (m *Model) apply(u tui.Update) {
	switch {
	case u.Status != nil:
		m.link, m.linkAt = *u.Status, m.cfg.Now()
	case u.Event != nil && u.Event.Type == protocol.TypeReset:
		m.resetAt = m.cfg.Now()
	case u.Event != nil && u.Event.Stats != nil:
		m.stats, m.statsAt = u.Event.Stats, m.cfg.Now()
		m.hist.add(u.Event.Stats)
		m.table.set(u.Event.Stats.Streams)
	}
}

// key handles a key press.
func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	if k.String() == "ctrl+c" {
		return tea.Quit
	}
	if m.table.filtering && m.room == nil {
		m.typeFilter(k)
		return nil
	}
	if k.Type == tea.KeyRunes && len(k.Runes) > 1 {
		// Keys typed faster than read arrive together ("/slow"): each
		// is a key, and those after a "/" go into the filter.
		var cmds []tea.Cmd
		for _, r := range k.Runes {
			cmds = append(cmds, m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}))
		}
		return tea.Batch(cmds...)
	}
	if key.Matches(k, m.keys.Quit) {
		return tea.Quit
	}
	delta, moves := m.step(k)
	if m.room != nil {
		switch {
		case key.Matches(k, m.keys.Back):
			m.room = nil
		case moves:
			m.room.scroll(delta)
		}
		return nil
	}
	switch {
	case moves:
		m.table.move(delta)
	case key.Matches(k, m.keys.Home):
		m.table.move(-len(m.table.rows))
	case key.Matches(k, m.keys.End):
		m.table.move(len(m.table.rows))
	case key.Matches(k, m.keys.Sort):
		m.table.nextSort()
	case key.Matches(k, m.keys.Reverse):
		m.table.reverse = !m.table.reverse
		m.table.refresh()
	case key.Matches(k, m.keys.Filter):
		m.table.filtering = true
	case key.Matches(k, m.keys.Open):
		if m.table.selected != "" {
			m.room = &roomView{stream: m.table.selected}
			return m.room.refresh(m.cfg)
		}
	case k.String() == "esc" && m.table.filter != "":
		m.table.filter = ""
		m.table.refresh()
	}
	return nil
}

// step says how far k moves the selection or the scroll: a row with up
// and down, a page with page up and page down.
func (m *Model) step(k tea.KeyMsg) (delta int, moves bool) {
	switch {
	case key.Matches(k, m.keys.Up):
		return -1, true
	case key.Matches(k, m.keys.Down):
		return 1, true
	case key.Matches(k, m.keys.PageUp):
		return -m.pageRows(), true
	case key.Matches(k, m.keys.PageDown):
		return m.pageRows(), true
	}
	return 0, false
}

// typeFilter takes a key while the filter is typed: text goes in,
// backspace takes out, enter keeps the filter and esc clears it.
func (m *Model) typeFilter(k tea.KeyMsg) {
	t := &m.table
	switch k.Type {
	case tea.KeyEnter:
		t.filtering = false
	case tea.KeyEsc:
		t.filtering, t.filter = false, ""
	case tea.KeyBackspace:
		if r := []rune(t.filter); len(r) > 0 {
			t.filter = string(r[:len(r)-1])
		}
	case tea.KeyRunes, tea.KeySpace:
		t.filter += clean(string(k.Runes))
	default:
		return
	}
	t.refresh()
}

// pageRows is how many rows a page key moves.
func (m *Model) pageRows() int { return max(m.height/2, 1) }

// Closed reports whether the updates channel closed (the connection
// ended for good).
func (m *Model) Closed() bool { return m.closed }

// history is what the header's sparklines draw: the totals of each
// snapshot, oldest first, as many as a wide screen shows.
type history struct {
	conns, in, out []float64
}

// historyLen is how many snapshots the sparklines keep.
const historyLen = 512

func (h *history) add(st *protocol.Stats) {
	n := 0
	for _, c := range st.Connections {
		n += c
	}
	h.conns = keepLast(append(h.conns, float64(n)), historyLen)
	h.in = keepLast(append(h.in, st.EventsIn), historyLen)
	h.out = keepLast(append(h.out, st.DeliveriesOut), historyLen)
}

func keepLast(s []float64, n int) []float64 {
	if len(s) > n {
		return append(s[:0], s[len(s)-n:]...)
	}
	return s
}

// Render draws the screen for one snapshot at a size, as it would show
// with nothing selected: pushd top --once.
func Render(cfg Config, st *protocol.Stats, w, h int) string {
	m := New(cfg)
	m.link = tui.Status{Stream: protocol.StatsStream, State: client.StateConnected, Transport: cfg.Transport}
	m.apply(tui.Update{Event: &protocol.Event{Type: protocol.TypeStats, Stats: st}})
	m.width, m.height = w, h
	return m.View()
}
