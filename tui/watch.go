package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/protocol"
)

// TaskConn is the task list's link to the server.
type TaskConn interface {
	// Updates carries the tasks stream's events and its connection state
	// changes; the implementation closes it when it is done.
	Updates() <-chan Update
	// Tasks returns the tasks the server keeps, newest first.
	Tasks(ctx context.Context) ([]protocol.Task, error)
	// StartDemo starts a demo task.
	StartDemo(ctx context.Context) (protocol.Task, error)
	// Cancel cancels a task.
	Cancel(ctx context.Context, id string) (protocol.Task, error)
}

// WatchConfig sets up a WatchModel.
type WatchConfig struct {
	Common
	Conn TaskConn
}

// WatchModel is the list of every task, newest first, with live progress;
// keys select, cancel and start tasks.
type WatchModel struct {
	frame
	conn     TaskConn
	keys     watchKeys
	tasks    taskSet
	gen      int
	loaded   bool
	loadErr  error
	selected string // the selected task's ID
	top      int    // the first row shown
	bars     bars
	note     string // the outcome of the last action
	confirm  string // the task whose cancel awaits y or n; "" when none
	noteBad  bool
}

// actionMsg is the outcome of starting or cancelling a task.
type actionMsg struct {
	what string
	task protocol.Task
	err  error
}

// NewWatchModel returns the task list for cfg.
func NewWatchModel(cfg WatchConfig) *WatchModel {
	f := newFrame(cfg.Common, cfg.Conn.Updates(), protocol.TasksStream)
	return &WatchModel{
		frame: f,
		conn:  cfg.Conn,
		keys:  defaultWatchKeys(),
		tasks: newTaskSet(),
		bars:  newBars(f.Styles),
	}
}

// Init starts reading updates and lists the tasks.
func (m *WatchModel) Init() tea.Cmd {
	return tea.Batch(m.nextUpdates(), m.list(), m.animate(m.liveTasks()))
}

func (m *WatchModel) list() tea.Cmd {
	m.gen++
	return listTasks(&m.frame, m.conn.Tasks, m.gen)
}

// liveTasks reports whether a task is queued or running: the spinner
// turns for them.
func (m *WatchModel) liveTasks() bool { return len(m.tasks.Live()) > 0 }

// Update implements tea.Model.
func (m *WatchModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(msg.Width, msg.Height)
		m.scrollToSelection()
		return m, nil
	case tea.KeyMsg:
		return m, m.onKey(msg)
	case updatesMsg:
		var cmds []tea.Cmd
		m.eachFresh(msg.Updates, func(e *protocol.Event) {
			switch e.Type {
			case protocol.TypeProgress:
				if e.Task != nil {
					before, had := m.tasks.Get(e.Task.ID)
					wasFinal := had && before.State.Final()
					m.tasks.Apply(*e.Task, e.Time)
					if t := e.Task; t.State.Final() && !wasFinal {
						// Its outcome stays said after its row has moved
						// down the list.
						m.note, m.noteBad = finishedText(t), t.State != protocol.TaskSucceeded
					}
				}
			case protocol.TypeReset:
				m.link.noteReset(e.Reason, m.Now())
				cmds = append(cmds, m.list())
			}
		})
		m.fixSelection()
		return m, tea.Batch(append(cmds, m.updated(msg.Closed, m.liveTasks()))...)
	case tasksMsg:
		if msg.Gen != m.gen {
			return m, nil
		}
		if msg.Err != nil {
			m.loadErr = msg.Err
			return m, nil
		}
		m.loaded, m.loadErr = true, nil
		m.tasks.Replace(msg.Tasks)
		m.fixSelection()
		return m, m.animate(m.liveTasks())
	case actionMsg:
		m.noteBad = msg.err != nil
		switch {
		case msg.err != nil:
			m.note = msg.what + ": " + errText(msg.err)
		case msg.what == "start":
			m.note = fmt.Sprintf("started %s (%s)", taskName(&msg.task), msg.task.ID)
			if m.tasks.Apply(msg.task, time.Time{}) {
				m.selected = msg.task.ID
				m.scrollToSelection()
			}
		default:
			m.note = fmt.Sprintf("cancelling %s (%s)", taskName(&msg.task), msg.task.ID)
			if v, ok := m.tasks.Get(msg.task.ID); ok && !v.State.Final() {
				m.tasks.Apply(msg.task, time.Time{})
			}
		}
		return m, m.animate(m.liveTasks())
	case spinner.TickMsg:
		return m, m.tick(msg, m.liveTasks())
	}
	return m, nil
}

// onKey handles a key press.
func (m *WatchModel) onKey(k tea.KeyMsg) tea.Cmd {
	if isText(k) {
		return nil // a chunk of text ("down", "esc") is no key press
	}
	all := m.tasks.All()
	idx := m.index()
	if m.confirm != "" {
		return m.confirmed(k)
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		m.quitting = true
		return tea.Quit
	case key.Matches(k, m.keys.Up):
		m.selectIndex(idx - 1)
	case key.Matches(k, m.keys.Down):
		m.selectIndex(idx + 1)
	case key.Matches(k, m.keys.PageUp):
		m.selectIndex(idx - m.rows())
	case key.Matches(k, m.keys.PageDown):
		m.selectIndex(idx + m.rows())
	case key.Matches(k, m.keys.Top):
		m.selectIndex(0)
	case key.Matches(k, m.keys.Bottom):
		m.selectIndex(len(all) - 1)
	case key.Matches(k, m.keys.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.scrollToSelection()
	case key.Matches(k, m.keys.New):
		conn := m.conn
		m.note, m.noteBad = "starting a demo task…", false
		return m.request(func(ctx context.Context) tea.Msg {
			t, err := conn.StartDemo(ctx)
			return actionMsg{what: "start", task: t, err: err}
		})
	case key.Matches(k, m.keys.Cancel):
		v, ok := m.tasks.Get(m.selected)
		if !ok {
			m.note, m.noteBad = "no task selected", true
			return nil
		}
		if v.State.Final() {
			m.note, m.noteBad = fmt.Sprintf("%s already %s", taskName(&v.Task), v.State), true
			return nil
		}
		m.confirm = v.ID
		m.note, m.noteBad = fmt.Sprintf("cancel %s (%s)? y/n", taskName(&v.Task), v.ID), false
	}
	return nil
}

// confirmed takes the answer to "cancel ...? y/n": y cancels the task,
// any other key does not.
func (m *WatchModel) confirmed(k tea.KeyMsg) tea.Cmd {
	id := m.confirm
	m.confirm = ""
	v, ok := m.tasks.Get(id)
	if k.String() != "y" && k.String() != "Y" || !ok {
		m.note, m.noteBad = "not cancelled", false
		return nil
	}
	if v.State.Final() {
		m.note, m.noteBad = fmt.Sprintf("%s already %s", taskName(&v.Task), v.State), true
		return nil
	}
	conn := m.conn
	m.note, m.noteBad = fmt.Sprintf("cancelling %s…", taskName(&v.Task)), false
	return m.request(func(ctx context.Context) tea.Msg {
		t, err := conn.Cancel(ctx, id)
		return actionMsg{what: "cancel " + id, task: t, err: err}
	})
}

// finishedText says how a task ended: "build-42 succeeded", "build-42
// failed: disk full".
func finishedText(t *protocol.Task) string {
	s := fmt.Sprintf("%s %s", taskName(t), t.State)
	if t.Message != "" {
		s += ": " + clean(t.Message, false)
	}
	return s
}

// index returns the selected row, or -1.
func (m *WatchModel) index() int {
	for i, v := range m.tasks.All() {
		if v.ID == m.selected {
			return i
		}
	}
	return -1
}

// selectIndex selects row i, clamped to the list.
func (m *WatchModel) selectIndex(i int) {
	all := m.tasks.All()
	if len(all) == 0 {
		return
	}
	i = max(0, min(i, len(all)-1))
	if all[i].ID != m.selected {
		m.note = ""
	}
	m.selected = all[i].ID
	m.scrollToSelection()
}

// fixSelection keeps a task selected: the first one when none is (or the
// selected one is gone).
func (m *WatchModel) fixSelection() {
	if m.index() < 0 {
		if m.selected != "" {
			m.note = "" // it was about a task that is gone
		}
		if all := m.tasks.All(); len(all) > 0 {
			m.selected = all[0].ID
		} else {
			m.selected = ""
		}
	}
	m.scrollToSelection()
}

// rows returns how many task rows fit.
func (m *WatchModel) rows() int {
	fixed := 1 + 1 + 1 + 1 + 1 // header, blank, column titles, detail, help
	if m.help.ShowAll {
		fixed += 3
	}
	return max(m.height-fixed, 1)
}

// scrollToSelection keeps the selected row in view.
func (m *WatchModel) scrollToSelection() {
	i, n := m.index(), m.rows()
	if i < 0 {
		m.top = 0
		return
	}
	if i < m.top {
		m.top = i
	}
	if i >= m.top+n {
		m.top = i - n + 1
	}
	m.top = max(0, min(m.top, max(m.tasks.Len()-n, 0)))
}

// Column widths of the task table.
const (
	colState = 12
	colPct   = 5
	colCount = 13
	colRate  = 8
	colETA   = 11
)

// View implements tea.Model.
func (m *WatchModel) View() string {
	if m.quitting || m.width == 0 {
		return ""
	}
	st := m.Styles
	lines := make([]string, 0, m.height)
	left := st.Title.Render("tasks") + " " + st.Dim.Render(m.Server)
	lines = append(lines, headerLine(m.width, left, m.linkView()))
	lines = append(lines, "")
	cols := m.columns()
	title := "  " + Pad("NAME", cols.nameW) + " " + Pad("STATE", colState) + " " + Pad("PROGRESS", cols.barW) +
		cols.numbers("%", "DONE/TOTAL", "RATE", "ETA")
	lines = append(lines, st.Dim.Bold(true).Render(Pad(title, m.width)))
	all := m.tasks.All()
	n := m.rows()
	switch {
	case len(all) == 0 && m.loadErr != nil:
		lines = append(lines, st.Error.Render(Pad("  could not list tasks: "+errText(m.loadErr), m.width)))
	case len(all) == 0 && !m.loaded:
		lines = append(lines, st.Dim.Render(Pad("  loading…", m.width)))
	case len(all) == 0:
		lines = append(lines, st.Dim.Render(Pad("  no tasks yet: press n to start a demo task", m.width)))
	}
	end := min(m.top+n, len(all))
	for _, v := range all[m.top:end] {
		lines = append(lines, m.row(v, cols))
	}
	for len(lines) < 3+n {
		lines = append(lines, "")
	}
	lines = append(lines, m.detail())
	lines = append(lines, strings.Split(m.help.View(m.keys), "\n")...)
	return strings.Join(FitLines(lines, m.width, m.height), "\n")
}

// tableLayout is which columns of the task table fit, and how wide the
// flexible ones are.
type tableLayout struct {
	nameW, barW      int
	count, rate, eta bool
}

// columns fits the table to the screen, dropping the rate, then the ETA,
// then done/total when it is narrow.
func (m *WatchModel) columns() tableLayout {
	l := tableLayout{count: true, rate: true, eta: true}
	for {
		rest := m.width - 2 - 1 - colState - 1 - colPct
		if l.count {
			rest -= colCount
		}
		if l.rate {
			rest -= colRate
		}
		if l.eta {
			rest -= colETA
		}
		if rest >= 8+1+10 || !(l.count || l.rate || l.eta) {
			l.nameW = min(max(rest*2/5, 8), 28)
			l.barW = max(rest-l.nameW-1, 4)
			return l
		}
		switch {
		case l.rate:
			l.rate = false
		case l.eta:
			l.eta = false
		default:
			l.count = false
		}
	}
}

// numbers lays out the right-hand columns of the table.
func (l tableLayout) numbers(pct, count, rate, eta string) string {
	s := PadLeft(pct, colPct)
	if l.count {
		s += PadLeft(count, colCount)
	}
	if l.rate {
		s += PadLeft(rate, colRate)
	}
	if l.eta {
		s += PadLeft(eta, colETA)
	}
	return s
}

// row draws one task.
func (m *WatchModel) row(v *TaskView, cols tableLayout) string {
	st := m.Styles
	sel := v.ID == m.selected
	mark := "  "
	if sel {
		mark = st.Accent.Render("› ")
	}
	icon := stateIcon(v.State, m.spin.View())
	state := st.TaskState(v.State).Render(Pad(icon+" "+string(v.State), colState))
	name := Pad(taskName(&v.Task), cols.nameW)
	if sel {
		name = st.Selected.Render(name)
	} else if v.State.Final() {
		name = st.TaskState(v.State).Render(name)
	}
	eta := "-"
	if d, ok := v.ETA(); ok {
		eta = fmtDuration(d)
	} else if d, ok := v.Took(); ok {
		eta = "took " + fmtDuration(d)
	}
	nums := cols.numbers(fmtPercent(v.Fraction()), fmtCount(v.Done, v.Total), fmtRate(v.Rate()), eta)
	if v.State.Final() {
		nums = st.TaskState(v.State).Render(nums)
	}
	return Pad(mark+name+" "+state+" "+m.bars.view(v.Fraction(), cols.barW, v.State)+nums, m.width)
}

// detail is the line under the table: the outcome of the last action, or
// the selected task's ID, kind and message.
func (m *WatchModel) detail() string {
	st := m.Styles
	if m.note != "" {
		if m.noteBad {
			return st.Error.Render("✗ " + m.note)
		}
		return st.Dim.Render(m.note)
	}
	v, ok := m.tasks.Get(m.selected)
	if !ok {
		return ""
	}
	parts := []string{v.ID, v.Kind}
	if v.Message != "" {
		parts = append(parts, clean(v.Message, false))
	}
	return st.Dim.Render(strings.Join(parts, " · "))
}

// stateIcon is the glyph before a state: a spinner while running.
func stateIcon(s protocol.TaskState, spin string) string {
	switch s {
	case protocol.TaskRunning:
		return spin
	case protocol.TaskSucceeded:
		return "✓"
	case protocol.TaskFailed:
		return "✗"
	case protocol.TaskCancelled:
		return "⊘"
	}
	return "…"
}

// taskName is a task's name fit for the screen, or its ID when unnamed.
func taskName(t *protocol.Task) string {
	if n := clean(t.Name, false); n != "" {
		return n
	}
	return t.ID
}

// Selected returns the selected task's ID ("" when there are none).
func (m *WatchModel) Selected() string { return m.selected }
