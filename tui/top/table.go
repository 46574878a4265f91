package top

import (
	"cmp"
	"slices"
	"strings"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// column is a column of the streams table.
type column struct {
	title string
	width int // 0: the stream's name, which takes what the others leave
	// desc: sorted largest first unless reversed.
	desc bool
	cmp  func(a, b protocol.StreamStats) int
	cell func(s protocol.StreamStats) string
}

// columns are the streams table's columns; sortOut is the one it is
// sorted by at first.
var columns = []column{
	{title: "STREAM", cmp: func(a, b protocol.StreamStats) int { return cmp.Compare(label(a.Stream), label(b.Stream)) },
		cell: func(s protocol.StreamStats) string { return label(s.Stream) }},
	figure("SUBS", 7, func(s protocol.StreamStats) int { return s.Subscribers }, count),
	figure("USERS", 7, func(s protocol.StreamStats) int { return s.Present }, count),
	figure("IN/s", 7, func(s protocol.StreamStats) float64 { return s.EventsIn }, rate),
	figure("OUT/s", 7, func(s protocol.StreamStats) float64 { return s.DeliveriesOut }, rate),
	figure("HEAD", 10, func(s protocol.StreamStats) uint64 { return s.Head }, count),
	figure("MAX LAG", 9, func(s protocol.StreamStats) uint64 { return s.MaxLag }, count),
}

// figure is a column of one figure of a stream, width cells wide, sorted
// largest first unless reversed and shown with show.
func figure[T cmp.Ordered](title string, width int, of func(protocol.StreamStats) T, show func(T) string) column {
	return column{title: title, width: width, desc: true,
		cmp:  func(a, b protocol.StreamStats) int { return cmp.Compare(of(a), of(b)) },
		cell: func(s protocol.StreamStats) string { return show(of(s)) }}
}

const (
	colLag  = 6
	sortOut = 4
)

// label is how a stream is shown: a room by its name, the tasks stream
// as "(tasks)".
func label(stream string) string {
	if room, ok := strings.CutPrefix(stream, protocol.RoomStream("")); ok {
		return room
	}
	return "(" + clean(stream) + ")"
}

// table is the streams table: what the last stats listed, filtered and
// sorted, and the selected row, which stays on its stream as rows move.
type table struct {
	all       []protocol.StreamStats
	rows      []protocol.StreamStats
	sortBy    int
	reverse   bool
	filter    string
	filtering bool   // the filter is being typed
	selected  string // the selected row's stream
	top       int    // the first row shown
}

func newTable() table { return table{sortBy: sortOut} }

// set takes the streams of new stats.
func (t *table) set(streams []protocol.StreamStats) {
	t.all = streams
	t.refresh()
}

// refresh filters and sorts the rows again, keeping the selection on its
// stream, or on the first row when that has gone.
func (t *table) refresh() {
	t.rows = t.rows[:0]
	needle := strings.ToLower(t.filter)
	for _, s := range t.all {
		if strings.Contains(strings.ToLower(label(s.Stream)), needle) {
			t.rows = append(t.rows, s)
		}
	}
	c := columns[t.sortBy]
	desc := c.desc != t.reverse
	slices.SortStableFunc(t.rows, func(a, b protocol.StreamStats) int {
		r := c.cmp(a, b)
		if desc {
			r = -r
		}
		return cmp.Or(r, cmp.Compare(a.Stream, b.Stream))
	})
	if t.index() < 0 {
		t.selected = ""
		if len(t.rows) > 0 {
			t.selected = t.rows[0].Stream
		}
	}
}

// index is the selected row's, or -1.
func (t *table) index() int {
	return slices.IndexFunc(t.rows, func(s protocol.StreamStats) bool { return s.Stream == t.selected })
}

// move moves the selection by delta rows, within the table.
func (t *table) move(delta int) {
	if len(t.rows) == 0 {
		return
	}
	i := min(max(t.index()+delta, 0), len(t.rows)-1)
	t.selected = t.rows[i].Stream
}

// nextSort sorts by the next column, each in its own first order.
func (t *table) nextSort() {
	t.sortBy = (t.sortBy + 1) % len(columns)
	t.reverse = false
	t.refresh()
}

// describe says what the table shows: "4 of 4 · by OUT/s ▼".
func (t *table) describe(total int) string {
	arrow := "▲"
	if columns[t.sortBy].desc != t.reverse {
		arrow = "▼"
	}
	s := count(len(t.rows)) + " of " + count(total) + " · by " + columns[t.sortBy].title + " " + arrow
	if t.filter != "" || t.filtering {
		s += " · filter: " + t.filter
		if t.filtering {
			s += "▏"
		}
	}
	return s
}

// view draws the column titles and as many rows as fit in h lines, w
// cells wide, keeping the selected row in sight. maxLag is the lag limit,
// for the colour of lags.
func (t *table) view(st *tui.Styles, w, h, maxLag int) []string {
	if h <= 0 {
		return nil
	}
	nameW := w - 1
	for _, c := range columns[1:] {
		nameW -= c.width
	}
	var head strings.Builder
	head.WriteString(" ")
	for i, c := range columns {
		title := c.title
		if i == t.sortBy {
			title = st.Accent.Render(title)
		}
		if c.width == 0 {
			head.WriteString(tui.Pad(title, nameW))
		} else {
			head.WriteString(tui.PadLeft(title, c.width))
		}
	}
	lines := []string{st.Dim.Render(head.String())}
	rows := h - 1
	if len(t.rows) == 0 {
		msg := "no streams in memory"
		if t.filter != "" {
			msg = "no stream matches " + t.filter
		}
		return append(lines, st.Dim.Render(" "+msg))
	}
	sel := t.index()
	t.top = min(max(t.top, sel-rows+1, 0), sel, max(len(t.rows)-rows, 0))
	for i := t.top; i < len(t.rows) && i < t.top+rows; i++ {
		s := t.rows[i]
		var b strings.Builder
		if i == sel {
			b.WriteString("▸")
		} else {
			b.WriteString(" ")
		}
		for j, c := range columns {
			cell := c.cell(s)
			if c.width == 0 {
				b.WriteString(tui.Pad(cell, nameW))
				continue
			}
			cell = tui.PadLeft(cell, c.width)
			if j == colLag && i != sel {
				cell = lagStyle(st, s.MaxLag, maxLag).Render(cell)
			}
			b.WriteString(cell)
		}
		line := b.String()
		if i == sel {
			line = st.Selected.Render(tui.Pad(line, w))
		}
		lines = append(lines, line)
	}
	return lines
}
