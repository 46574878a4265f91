package top

import (
	"context"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// roomView is one stream's subscribers, asked for once a second while it
// is shown.
type roomView struct {
	stream  string
	list    *protocol.SubscriberList
	err     error
	asking  bool
	askedAt time.Time
	top     int // the first row shown
}

// subsMsg is the answer to a request for a stream's subscribers.
type subsMsg struct {
	stream string
	list   *protocol.SubscriberList
	err    error
}

// refresh asks for the subscribers, unless a request is under way.
func (r *roomView) refresh(cfg Config) tea.Cmd {
	if r.asking {
		return nil
	}
	r.asking, r.askedAt = true, cfg.Now()
	stream, conn, timeout := r.stream, cfg.Conn, cfg.Timeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		list, err := conn.Subscribers(ctx, stream)
		return subsMsg{stream: stream, list: list, err: err}
	}
}

// got takes an answer; one for another stream (left since) is dropped.
func (r *roomView) got(msg subsMsg) {
	if msg.stream != r.stream {
		return
	}
	r.asking = false
	r.err = msg.err
	if msg.err == nil {
		r.list = msg.list
	}
}

func (r *roomView) scroll(delta int) {
	n := 0
	if r.list != nil {
		n = len(r.list.Subscribers)
	}
	r.top = min(max(r.top+delta, 0), max(n-1, 0))
}

// title says what is shown: "lobby · 12 subscribers · head 340".
func (r *roomView) title(stats *protocol.Stats) string {
	s := label(r.stream)
	if r.list != nil {
		s += " · " + plural(r.list.Total, "subscriber") + " · head " + count(r.list.Head)
		if n := len(r.list.Subscribers); n < r.list.Total {
			s += " · the " + count(n) + " furthest behind"
		}
	}
	if stats != nil {
		for _, st := range stats.Streams {
			if st.Stream == r.stream {
				s += " · in " + rate(st.EventsIn) + "/s · out " + rate(st.DeliveriesOut) + "/s"
			}
		}
	}
	return s
}

// view draws the column titles and the subscribers in h lines, w cells
// wide; maxLag is the lag limit, for the gauges, and node names nodes
// (nil: one node).
func (r *roomView) view(st *tui.Styles, now time.Time, w, h, maxLag int, node func(string) string) []string {
	if h <= 0 {
		return nil
	}
	var lines []string
	if r.err != nil {
		lines = append(lines, st.Error.Render(tui.Pad(" "+clean(r.err.Error()), w)))
		h--
	}
	if r.list == nil {
		return append(lines, st.Dim.Render(" asking for the subscribers…"))
	}
	for _, m := range r.list.Missing {
		lines = append(lines, st.Warn.Render(tui.Pad(" not answering: "+clean(m), w)))
		h--
	}
	cols := layoutSubs(w, false, node)
	lines = append(lines, st.Dim.Render(cols.head()))
	h--
	subs := r.list.Subscribers
	if len(subs) == 0 {
		return append(lines, st.Dim.Render(" nobody is subscribed here now"))
	}
	r.top = min(r.top, max(len(subs)-h, 0))
	for _, s := range subs[r.top:min(len(subs), r.top+max(h, 0))] {
		lines = append(lines, cols.row(st, s, now, maxLag))
	}
	return lines
}

// subCols lays out a row of subscribers in a width: the stream's name
// only where several streams are listed, the node where there are
// several (names it, from a node's id).
type subCols struct {
	stream, transport, addr, user, gauge int
	node                                 func(id string) string
}

// layoutSubs shares w between the columns: the stream's too if
// withStream, and the node's, after the transport, when node is set.
func layoutSubs(w int, withStream bool, node func(string) string) subCols {
	// " [STREAM] TRANSPORT ADDRESS USER LAG GAUGE SINCE": 9 for the lag,
	// 8 for the time, and the rest shared.
	c := subCols{transport: 10, node: node}
	if node != nil {
		c.transport = 20
	}
	rest := w - 1 - c.transport - 9 - 8
	if withStream {
		c.stream = min(max(rest/5, 8), 16)
		rest -= c.stream
	}
	c.gauge = min(max(rest/5, 0), 12)
	rest -= c.gauge
	c.addr = min(max(rest*3/5, 10), 24)
	c.user = max(rest-c.addr, 0)
	return c
}

func (c subCols) head() string {
	var b strings.Builder
	b.WriteString(" ")
	if c.stream > 0 {
		b.WriteString(tui.Pad("STREAM", c.stream))
	}
	transport := "TRANSPORT"
	if c.node != nil {
		transport += "@NODE"
	}
	b.WriteString(tui.Pad(transport, c.transport) + tui.Pad("ADDRESS", c.addr) + tui.Pad("USER", c.user) + tui.PadLeft("LAG", 8) + " ")
	b.WriteString(tui.Pad("", c.gauge) + tui.PadLeft("SINCE", 8))
	return b.String()
}

// row draws a subscriber: how far behind it is, against the lag limit.
func (c subCols) row(st *tui.Styles, s protocol.SubscriberStats, now time.Time, maxLag int) string {
	var b strings.Builder
	b.WriteString(" ")
	if c.stream > 0 {
		b.WriteString(tui.Pad(label(s.Stream), c.stream))
	}
	transport := clean(s.Transport)
	if c.node != nil && s.Node != "" {
		transport += "@" + c.node(s.Node)
	}
	user := clean(s.User)
	if user == "" {
		user = "-"
	}
	b.WriteString(tui.Pad(transport, c.transport) + tui.Pad(clean(s.Addr), c.addr) + tui.Pad(user, c.user))
	style := lagStyle(st, s.Lag, maxLag)
	b.WriteString(style.Render(tui.PadLeft(count(s.Lag), 8)) + " ")
	if c.gauge > 0 {
		f := 0.0
		if maxLag > 0 {
			f = float64(s.Lag) / float64(maxLag)
		}
		b.WriteString(style.Render(gauge(f, c.gauge-1)) + " ")
	}
	b.WriteString(tui.PadLeft(age(now.Sub(s.Since)), 8))
	return b.String()
}

// plural writes "1 subscriber", "3 subscribers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return count(n) + " " + noun + "s"
}
