package top

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// staleAfter is how old the last stats may be before the header says so.
const staleAfter = 3 * time.Second

// View implements tea.Model: the header, then the streams table (or a
// stream's subscribers), the subscribers furthest behind, the tasks and
// store panes, and the help line, exactly the screen's size.
func (m *Model) View() string {
	w, h := m.width, m.height
	if w <= 0 || h <= 0 {
		return ""
	}
	lines := m.header(w)
	body := h - len(lines) - 1
	switch {
	case m.stats == nil:
		lines = append(lines, m.waiting(w))
	case m.room != nil:
		lines = append(lines, rule(m.cfg.Styles, m.room.title(m.stats), w))
		lines = append(lines, m.room.view(m.cfg.Styles, m.cfg.Now(), w, body-1, m.maxLag(), m.nodeNames())...)
	default:
		lines = append(lines, m.body(w, body)...)
	}
	lines = tui.FitLines(lines, w, h-1)
	return strings.Join(append(lines, m.helpLine(w)), "\n")
}

// waiting is what shows before the first stats.
func (m *Model) waiting(w int) string {
	s := " waiting for the first stats…"
	if m.link.Err != nil {
		s += " (" + clean(m.link.Err.Error()) + ")"
	}
	return m.cfg.Styles.Dim.Render(tui.Pad(s, w))
}

// header draws three lines: who and how connected; connections with
// their sparkline and the slow-consumer drops; events in and deliveries
// out with theirs.
func (m *Model) header(w int) []string {
	st := m.cfg.Styles
	left := st.Title.Render("pushd top") + " " + st.Header.Render(clean(m.cfg.Server))
	if m.stats != nil {
		left += st.Dim.Render(" · " + plural(len(m.stats.Nodes), "node"))
	}
	lines := []string{headerLine(w, left, m.linkView())}
	if m.stats == nil {
		return lines
	}
	s := m.stats
	total := 0
	for _, n := range s.Connections {
		total += n
	}
	conns := fmt.Sprintf("conns %s · ws %s · sse %s · longpoll %s", count(total),
		count(s.Connections["ws"]), count(s.Connections["sse"]), count(s.Connections["longpoll"]))
	drops := "slow drops " + count(s.SlowDrops)
	dropStyle := st.Dim
	if s.SlowDrops > 0 {
		dropStyle = st.Warn
	}
	spark := w - lipgloss.Width(conns) - lipgloss.Width(drops) - 4
	lines = append(lines, " "+st.Header.Render(conns)+" "+st.Accent.Render(sparkline(m.hist.conns, spark))+"  "+dropStyle.Render(drops))

	half := (w - 1) / 2
	in := fmt.Sprintf("in  %6s/s ", rate(s.EventsIn))
	out := fmt.Sprintf("out %6s/s ", rate(s.DeliveriesOut))
	lines = append(lines, " "+st.Header.Render(in)+st.Good.Render(sparkline(m.hist.in, half-lipgloss.Width(in)-1))+" "+
		st.Header.Render(out)+st.Good.Render(sparkline(m.hist.out, w-1-half-lipgloss.Width(out))))
	return lines
}

// linkView says how the screen is connected, and how fresh its stats are.
func (m *Model) linkView() string {
	st, now := m.cfg.Styles, m.cfg.Now()
	var s string
	switch m.link.State {
	case client.StateConnecting:
		s = st.Warn.Render("◌ connecting") + st.Dim.Render(" · "+m.link.Transport)
	case client.StateConnected:
		s = st.Good.Render("● live") + st.Dim.Render(" · "+m.link.Transport)
	case client.StateReconnecting:
		left := int(math.Ceil((m.link.RetryIn - now.Sub(m.linkAt)).Seconds()))
		text := "◌ reconnecting now"
		if left > 0 {
			text = fmt.Sprintf("◌ reconnecting in %ds", left)
		}
		s = st.Warn.Render(text)
	default:
		s = st.Bad.Render("✗ closed")
	}
	if !m.resetAt.IsZero() && now.Sub(m.resetAt) < 10*time.Second {
		s += st.Dim.Render(" · ") + st.Warn.Render("server restarted")
	}
	if m.stats != nil {
		if old := now.Sub(m.statsAt); old >= staleAfter {
			s += st.Dim.Render(" · ") + st.Warn.Render("stats "+age(old)+" old")
		} else {
			s += st.Dim.Render(" · " + m.stats.Time.In(m.cfg.Location).Format("15:04:05"))
		}
	}
	return s
}

// headerLine lays out left, then right flush with the right edge; left is
// cut short when they do not both fit.
func headerLine(w int, left, right string) string {
	rw := lipgloss.Width(right)
	room := w - rw - 1
	if room < 1 {
		return tui.Pad(right, w)
	}
	return tui.Pad(left, room) + " " + right
}

// rule draws a section's title in a line across the screen.
func rule(st *tui.Styles, title string, w int) string {
	t := tui.Pad(" "+title+" ", min(lipgloss.Width(title)+2, w-1))
	return st.Border.Render("─") + st.Header.Render(t) + st.Border.Render(strings.Repeat("─", max(w-1-lipgloss.Width(t), 0)))
}

// body draws the main screen below the header in h lines: the streams
// table takes what the others leave.
func (m *Model) body(w, h int) []string {
	st, s := m.cfg.Styles, m.stats
	lagRows := min(max(len(s.Lagging), 1), 3, max(h/8, 1))
	paneRows := min(5, max(h/4, 2))
	if h < 14 {
		lagRows, paneRows = 0, 0
	}
	tableRows := h - paneRows - lagRows
	if lagRows > 0 {
		tableRows-- // the lagging section's title
	}
	if paneRows > 0 {
		tableRows-- // the panes' title
	}
	lines := []string{rule(st, "streams · "+m.table.describe(s.StreamsTotal), w)}
	table := m.table.view(st, w, tableRows-1, m.maxLag())
	lines = append(lines, tui.FitLines(table, w, tableRows-1)...)
	if lagRows > 0 {
		lines = append(lines, rule(st, "furthest behind", w))
		lines = append(lines, tui.FitLines(m.lagging(w, lagRows), w, lagRows)...)
	}
	if paneRows > 0 {
		left := (w - 1) / 2
		lines = append(lines, rule(st, m.tasksTitle(), left)+" "+rule(st, m.storeTitle(), w-left-1))
		tasks, store := tui.FitLines(m.tasksPane(left, paneRows), left, paneRows), tui.FitLines(m.storePane(w-left-1, paneRows), w-left-1, paneRows)
		for i := range paneRows {
			lines = append(lines, tasks[i]+" "+store[i])
		}
	}
	return lines
}

// maxLag is the largest lag limit of the nodes.
func (m *Model) maxLag() int {
	n := 0
	if m.stats != nil {
		for _, node := range m.stats.Nodes {
			n = max(n, node.MaxLag)
		}
	}
	return n
}

// lagging lists the subscribers furthest behind, in n lines.
func (m *Model) lagging(w, n int) []string {
	st, s := m.cfg.Styles, m.stats
	if len(s.Lagging) == 0 {
		return []string{st.Dim.Render(" nobody is behind")}
	}
	cols := layoutSubs(w, true, m.nodeNames())
	var lines []string
	for _, l := range s.Lagging[:min(n, len(s.Lagging))] {
		lines = append(lines, cols.row(st, l, m.cfg.Now(), m.maxLag()))
	}
	return lines
}

// nodeNames returns what names a node, from its id, when there are
// several: its host, or host/pid where hosts repeat; nil for one node.
func (m *Model) nodeNames() func(id string) string {
	if m.stats == nil || len(m.stats.Nodes) < 2 {
		return nil
	}
	hosts := map[string]int{}
	for _, n := range m.stats.Nodes {
		hosts[n.Host]++
	}
	names := map[string]string{}
	for _, n := range m.stats.Nodes {
		switch {
		case n.Host == "":
			names[n.Node] = clean(n.Node)
		case hosts[n.Host] == 1:
			names[n.Node] = clean(n.Host)
		default:
			names[n.Node] = fmt.Sprintf("%s/%d", clean(n.Host), n.PID)
		}
	}
	return func(id string) string {
		if name, ok := names[id]; ok {
			return name
		}
		return clean(id)
	}
}

// lagStyle colours a lag by how near it is to the limit.
func lagStyle(st *tui.Styles, lag uint64, limit int) lipgloss.Style {
	switch {
	case lag == 0:
		return st.Dim
	case limit > 0 && lag*10 >= uint64(limit)*9:
		return st.Bad
	case limit > 0 && lag*2 >= uint64(limit):
		return st.Warn
	default:
		return st.Header
	}
}

// tasksTitle counts the tasks by state.
func (m *Model) tasksTitle() string {
	by := m.stats.Tasks.ByState
	done := by[protocol.TaskSucceeded] + by[protocol.TaskFailed] + by[protocol.TaskCancelled]
	return fmt.Sprintf("tasks %d running · %d queued · %d done", by[protocol.TaskRunning], by[protocol.TaskQueued], done)
}

// tasksPane lists the live tasks with their progress.
func (m *Model) tasksPane(w, n int) []string {
	st := m.cfg.Styles
	live := m.stats.Tasks.Live
	if len(live) == 0 {
		return []string{st.Dim.Render(" no task running")}
	}
	var lines []string
	for i, t := range live {
		if i == n-1 && len(live) > n {
			lines = append(lines, st.Dim.Render(fmt.Sprintf(" and %d more", len(live)-i)))
			break
		}
		name := clean(t.Name)
		if name == "" {
			name = clean(t.ID)
		}
		state := st.TaskState(t.State)
		if t.State == protocol.TaskQueued {
			lines = append(lines, " "+state.Render("○ ")+tui.Pad(name, w-11)+state.Render(tui.PadLeft("queued", 8)))
			continue
		}
		bar := max(w/4, 4)
		lines = append(lines, " "+state.Render("▶ ")+tui.Pad(name, w-9-bar)+" "+state.Render(gauge(t.Percent/100, bar))+tui.PadLeft(fmt.Sprintf("%.0f%%", t.Percent), 5))
	}
	return lines
}

// storeTitle names the store pane.
func (m *Model) storeTitle() string {
	if len(m.stats.Nodes) == 1 {
		return "store · process"
	}
	return "nodes"
}

// storePane shows how the store keeps up and what the process uses: in
// full for one node, a line each for several.
func (m *Model) storePane(w, n int) []string {
	st := m.cfg.Styles
	nodes := m.stats.Nodes
	if len(nodes) == 1 {
		node := nodes[0]
		probe := " · " + st.Dim.Render("memory store")
		switch {
		case node.Store.ProbeError != "":
			probe = " · " + st.Bad.Render(clean(node.Store.Probe)+" failed: "+clean(node.Store.ProbeError))
		case node.Store.Probe != "":
			probe = " · " + clean(node.Store.Probe) + " " + millis(node.Store.ProbeMS)
		}
		return []string{
			fmt.Sprintf(" append p50 %s · p99 %s", millis(node.Store.AppendP50), millis(node.Store.AppendP99)),
			fmt.Sprintf(" %s appends/s", rate(node.Store.Appends)) + probe,
			fmt.Sprintf(" memory %s · heap %s", size(node.Process.Memory), size(node.Process.Heap)),
			fmt.Sprintf(" %s goroutines · cpu %s of %d", count(node.Process.Goroutines), cpu(node.Process.CPU), node.Process.Cores),
		}
	}
	names := m.nodeNames()
	var lines []string
	for _, node := range nodes[:min(n, len(nodes))] {
		name := tui.Pad(names(node.Node), min(14, max(w/5, 4)))
		if node.Error != "" {
			lines = append(lines, " "+name+" "+st.Bad.Render(clean(node.Error)))
			continue
		}
		conns := 0
		for _, c := range node.Connections {
			conns += c
		}
		lines = append(lines, fmt.Sprintf(" %s %s conns · cpu %s · p99 %s · %s", name, count(conns),
			cpu(node.Process.CPU), millis(node.Store.AppendP99), size(node.Process.Memory)))
	}
	return lines
}

// cpu writes cores busy: "0.31"; "?" when unknown.
func cpu(c float64) string {
	if c < 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f", c)
}

// helpLine is the keys of what is shown.
func (m *Model) helpLine(w int) string {
	var bindings []key.Binding
	switch {
	case m.room != nil:
		bindings = m.keys.roomHelp()
	case m.table.filtering:
		bindings = m.keys.filterHelp()
	default:
		bindings = m.keys.mainHelp()
	}
	return tui.Pad(" "+m.help.ShortHelpView(bindings), w)
}
