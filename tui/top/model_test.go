package top

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// t0 is the time of the test stats.
var t0 = time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC)

// fakeConn is a Conn whose updates a test sends and whose subscribers it
// sets.
type fakeConn struct {
	ch    chan tui.Update
	mu    sync.Mutex
	asked []string
	subs  map[string]*protocol.SubscriberList
	err   error
}

func newFakeConn() *fakeConn {
	return &fakeConn{ch: make(chan tui.Update, 16), subs: map[string]*protocol.SubscriberList{}}
}

func (c *fakeConn) Updates() <-chan tui.Update { return c.ch }

func (c *fakeConn) Subscribers(_ context.Context, stream string) (*protocol.SubscriberList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, stream)
	if c.err != nil {
		return nil, c.err
	}
	return c.subs[stream], nil
}

// sampleStats is a server with three rooms and the tasks stream, one
// subscriber far behind, two tasks and a bolt store.
func sampleStats() *protocol.Stats {
	return &protocol.Stats{
		Time: t0,
		Nodes: []protocol.NodeStats{{Node: "web-1", Host: "web-1", PID: 4242, Started: t0.Add(-time.Hour), MaxLag: 4096,
			Connections: map[string]int{"ws": 67, "sse": 68, "longpoll": 66}, EventsIn: 120, DeliveriesOut: 24100, SlowDrops: 3,
			Store:   protocol.StoreStats{Appends: 40, AppendP50: 0.9, AppendP99: 4.2, Probe: "fsync", ProbeMS: 0.8},
			Process: protocol.ProcessStats{Memory: 54 << 20, Heap: 21 << 20, Goroutines: 1234, CPU: 0.31, Cores: 2}}},
		Connections: map[string]int{"ws": 67, "sse": 68, "longpoll": 66},
		EventsIn:    120, DeliveriesOut: 24100, SlowDrops: 3,
		Streams: []protocol.StreamStats{
			{Stream: "room/lobby", Subscribers: 100, Present: 98, EventsIn: 100, DeliveriesOut: 10000, Head: 123456, MaxLag: 2},
			{Stream: "room/dev", Subscribers: 100, Present: 100, EventsIn: 19, DeliveriesOut: 1900, Head: 8812},
			{Stream: "room/slow", Subscribers: 1, Present: 1, EventsIn: 1, DeliveriesOut: 0, Head: 4000, MaxLag: 3900},
			{Stream: "tasks", Subscribers: 0, EventsIn: 0.5, Head: 77},
		},
		StreamsTotal: 4,
		Lagging: []protocol.SubscriberStats{
			{Stream: "room/slow", Transport: "sse", Addr: "127.0.0.1:51234", User: "stuck", Lag: 3900, Since: t0.Add(-2*time.Minute - 13*time.Second), Node: "web-1"},
			{Stream: "room/lobby", Transport: "ws", Addr: "10.1.2.3:40000", User: "ann", Lag: 2, Since: t0.Add(-time.Hour), Node: "web-1"},
		},
		Tasks: protocol.TaskStats{ByState: map[protocol.TaskState]int{protocol.TaskRunning: 1, protocol.TaskQueued: 1, protocol.TaskSucceeded: 5},
			Live: []protocol.Task{
				{ID: "t1", Name: "nightly-backup", State: protocol.TaskRunning, Percent: 45},
				{ID: "t2", Name: "reindex", State: protocol.TaskQueued},
			}},
	}
}

// sampleSubscribers is the lobby's two subscribers.
func sampleSubscribers() *protocol.SubscriberList {
	l := sampleStats().Lagging
	return &protocol.SubscriberList{Stream: "room/lobby", Head: 123456, Total: 2, Subscribers: []protocol.SubscriberStats{l[1], l[0]}}
}

// newModel returns a screen of w×h cells on conn with a fixed clock.
func newModel(conn *fakeConn, w, h int) *Model {
	m := New(Config{Common: tui.Common{Server: "http://127.0.0.1:8080", Transport: "auto", Now: func() time.Time { return t0.Add(500 * time.Millisecond) }},
		Conn: conn, Location: time.UTC})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// feed applies updates as the program would.
func feed(m *Model, us ...tui.Update) {
	for _, u := range us {
		m.Update(updateMsg{u: u})
	}
}

func connected(transport string) tui.Update {
	return tui.Update{Status: &tui.Status{Stream: protocol.StatsStream, State: client.StateConnected, Transport: transport}}
}

func statsEvent(st *protocol.Stats) tui.Update {
	return tui.Update{Event: &protocol.Event{Type: protocol.TypeStats, Stream: protocol.StatsStream, Stats: st}}
}

// press sends keys, each a key name or runes.
func press(m *Model, keys ...string) {
	for _, k := range keys {
		var msg tea.KeyMsg
		switch k {
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		case "up":
			msg = tea.KeyMsg{Type: tea.KeyUp}
		case "backspace":
			msg = tea.KeyMsg{Type: tea.KeyBackspace}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		_, cmd := m.Update(msg)
		if cmd != nil {
			if sm, ok := cmd().(subsMsg); ok { // a request for subscribers: answer it
				m.Update(sm)
			}
		}
	}
}

// checkScreen compares the view with testdata/<test>.golden, after
// checking that it fills the screen exactly.
func checkScreen(t *testing.T, m *Model) {
	t.Helper()
	view := m.View()
	lines := strings.Split(view, "\n")
	if len(lines) != m.height {
		t.Errorf("%d lines; want %d", len(lines), m.height)
	}
	for i, l := range lines {
		if n := len([]rune(l)); n != m.width {
			t.Errorf("line %d is %d cells, want %d: %q", i, n, m.width, l)
		}
	}
	golden.RequireEqual(t, []byte(view+"\n"))
}

func TestScreen(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 32}, {60, 12}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			m := newModel(newFakeConn(), size[0], size[1])
			st := sampleStats()
			feed(m, connected("ws"), statsEvent(st))
			for _, in := range []float64{80, 100, 140, 120} {
				st := sampleStats()
				st.EventsIn = in
				feed(m, statsEvent(st))
			}
			checkScreen(t, m)
		})
	}
}

// Enter on a stream shows its subscribers, asked for once a second;
// esc goes back to the table.
func TestScreenSubscribers(t *testing.T) {
	conn := newFakeConn()
	conn.subs["room/slow"] = &protocol.SubscriberList{Stream: "room/slow", Head: 4000, Total: 1,
		Subscribers: []protocol.SubscriberStats{sampleStats().Lagging[0]}}
	m := newModel(conn, 80, 24)
	feed(m, connected("sse"), statsEvent(sampleStats()))
	press(m, "down", "down", "enter")
	if fmt.Sprint(conn.asked) != "[room/slow]" {
		t.Fatalf("asked for %v; want room/slow", conn.asked)
	}
	checkScreen(t, m)

	// Each second it asks again, once the last answer is in.
	_, cmd := m.Update(tickMsg(t0))
	for _, msg := range cmd().(tea.BatchMsg) {
		if msg == nil {
			continue
		}
		if sm, ok := msg().(subsMsg); ok {
			m.Update(sm)
		}
	}
	if len(conn.asked) != 2 {
		t.Errorf("asked %d times after a tick; want 2", len(conn.asked))
	}
	press(m, "esc")
	if m.room != nil || !strings.Contains(m.View(), "streams · 4 of 4") {
		t.Errorf("esc did not go back to the streams:\n%s", m.View())
	}
}

// s sorts by the next column, r reverses, and the selection stays on its
// stream as the rows move.
func TestScreenSort(t *testing.T) {
	m := newModel(newFakeConn(), 80, 24)
	feed(m, statsEvent(sampleStats()))
	rows := func() string {
		var names []string
		for _, r := range m.table.rows {
			names = append(names, label(r.Stream))
		}
		return strings.Join(names, " ")
	}
	if got := rows(); got != "lobby dev slow (tasks)" {
		t.Errorf("by OUT/s: %s", got)
	}
	press(m, "down") // dev
	press(m, "s")    // HEAD
	if got := rows(); got != "lobby dev slow (tasks)" || m.table.selected != "room/dev" {
		t.Errorf("by HEAD: %s, selected %s", got, m.table.selected)
	}
	press(m, "s") // MAX LAG
	if got := rows(); got != "slow lobby dev (tasks)" {
		t.Errorf("by MAX LAG: %s", got)
	}
	press(m, "r")
	if got := rows(); got != "dev (tasks) lobby slow" || !strings.Contains(m.View(), "by MAX LAG ▲") {
		t.Errorf("by MAX LAG reversed: %s\n%s", got, m.View())
	}
	press(m, "s") // STREAM
	if got := rows(); got != "(tasks) dev lobby slow" {
		t.Errorf("by STREAM: %s", got)
	}
	if m.table.selected != "room/dev" {
		t.Errorf("selected %s; want the selection to stay on dev", m.table.selected)
	}
}

// / filters the streams as it is typed; enter keeps the filter, esc
// clears it.
func TestScreenFilter(t *testing.T) {
	m := newModel(newFakeConn(), 80, 24)
	feed(m, statsEvent(sampleStats()))
	press(m, "/", "s", "l", "x", "backspace")
	if len(m.table.rows) != 1 || m.table.rows[0].Stream != "room/slow" || !m.table.filtering {
		t.Fatalf("filtering %q: rows %+v", m.table.filter, m.table.rows)
	}
	press(m, "q") // typed into the filter, not quitting
	if m.table.filter != "slq" {
		t.Errorf("filter %q; want slq", m.table.filter)
	}
	press(m, "backspace", "enter")
	checkScreen(t, m)
	press(m, "esc", "/dev") // typed faster than read: a key, then the filter
	if m.table.filter != "dev" || len(m.table.rows) != 1 {
		t.Errorf("after /dev at once: filter %q, %d rows", m.table.filter, len(m.table.rows))
	}
	press(m, "esc", "esc")
	if m.table.filter != "" || len(m.table.rows) != 4 {
		t.Errorf("after esc: filter %q, %d rows", m.table.filter, len(m.table.rows))
	}
}

// The header says when the connection is down and counts to the next
// try; the last stats stay on screen, marked old.
func TestScreenReconnecting(t *testing.T) {
	m := newModel(newFakeConn(), 80, 24)
	feed(m, connected("ws"), statsEvent(sampleStats()))
	feed(m, tui.Update{Status: &tui.Status{Stream: protocol.StatsStream, State: client.StateReconnecting, Attempt: 2, RetryIn: 3 * time.Second,
		Err: errors.New("connection refused")}})
	m.statsAt = t0.Add(-3500 * time.Millisecond)
	head := strings.SplitN(m.View(), "\n", 2)[0]
	if !strings.Contains(head, "reconnecting in 3s") || !strings.Contains(head, "stats 4s old") {
		t.Errorf("header %q; want the countdown and the stats' age", head)
	}
	feed(m, tui.Update{Event: &protocol.Event{Type: protocol.TypeReset, Stream: protocol.StatsStream}})
	if head := strings.SplitN(m.View(), "\n", 2)[0]; !strings.Contains(head, "server restarted") {
		t.Errorf("header %q after a reset; want it said", head)
	}
	m.Update(updateMsg{closed: true})
	if head := strings.SplitN(m.View(), "\n", 2)[0]; !strings.Contains(head, "closed") || !m.Closed() {
		t.Errorf("header %q after the end; want closed", head)
	}
}

// With several nodes, the store pane lists each, one that did not
// answer too, and laggards say their node.
func TestScreenNodes(t *testing.T) {
	st := sampleStats()
	other := st.Nodes[0]
	other.Node, other.Host, other.Connections = "web-2", "web-2", map[string]int{"ws": 10}
	st.Nodes = append(st.Nodes, other, protocol.NodeStats{Node: "web-3", Error: "no answer: context deadline exceeded"})
	m := newModel(newFakeConn(), 100, 24)
	feed(m, connected("sse"), statsEvent(st))
	checkScreen(t, m)
}

// Before the first stats, and names from the network drawn harmless.
func TestScreenWaitingAndHostileNames(t *testing.T) {
	m := newModel(newFakeConn(), 80, 10)
	if v := m.View(); !strings.Contains(v, "waiting for the first stats") {
		t.Errorf("before stats:\n%s", v)
	}
	st := sampleStats()
	st.Tasks.Live[0].Name = "evil\x1b[2Jname\x07"
	st.Lagging[0].User = "u\x1b]0;title\x07"
	m = newModel(newFakeConn(), 80, 24)
	feed(m, statsEvent(st))
	if v := m.View(); strings.ContainsAny(v, "\x1b\x07") || !strings.Contains(v, "evilname") {
		t.Errorf("escape codes reached the screen:\n%q", v)
	}
}

// Render draws one snapshot for --once.
func TestRender(t *testing.T) {
	cfg := Config{Common: tui.Common{Server: "http://127.0.0.1:8080", Transport: "once", Now: func() time.Time { return t0 }}, Location: time.UTC}
	v := Render(cfg, sampleStats(), 80, 24)
	if !strings.Contains(v, "conns 201 · ws 67 · sse 68 · longpoll 66") || !strings.Contains(v, "nightly-backup") {
		t.Errorf("render:\n%s", v)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{rate(0), "0"}, {rate(0.5), "0.5"}, {rate(12.34), "12.3"}, {rate(123.4), "123"}, {rate(1234), "1.2k"},
		{rate(24100), "24k"}, {rate(2.5e6), "2.5M"}, {rate(-1), "0"},
		{count(0), "0"}, {count(1234567), "1,234,567"}, {count(uint64(999)), "999"},
		{size(812), "812 B"}, {size(54 << 20), "54 MiB"}, {size(1288490188), "1.2 GiB"},
		{millis(0.008), "8 µs"}, {millis(0.21), "0.21 ms"}, {millis(12), "12 ms"}, {millis(1300), "1.3 s"},
		{age(45 * time.Second), "45s"}, {age(133 * time.Second), "2m13s"}, {age(62 * time.Minute), "1h02m"}, {age(76 * time.Hour), "3d04h"},
		{sparkline([]float64{0, 1, 2, 4, 8}, 7), "  ▁▁▂▄█"}, {sparkline(nil, 3), "   "},
		{gauge(0.5, 4), "██░░"}, {gauge(0.01, 4), "█░░░"}, {gauge(2, 3), "███"},
		{clean("a\x1b[31mb\x00c"), "abc"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
