package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/protocol"
)

// ErrStopped is the result of following a task when the user stopped
// watching before it ended.
var ErrStopped = errors.New("stopped watching before the task ended")

// FollowConn is the single-task view's link to the server.
type FollowConn interface {
	// Updates carries the task's progress events and the connection state
	// changes; the implementation closes it when it is done.
	Updates() <-chan Update
	// Task returns the task as it is now.
	Task(ctx context.Context) (protocol.Task, error)
	// Cancel cancels the task.
	Cancel(ctx context.Context) (protocol.Task, error)
}

// FollowConfig sets up a FollowModel.
type FollowConfig struct {
	Common
	Conn   FollowConn
	TaskID string
}

// FollowModel follows one task until it ends, then quits; Result says how
// it ended. It draws a few lines in place, not the whole screen, so what it
// showed last stays in the terminal (also once the user stops watching,
// which is its frame's quitting).
type FollowModel struct {
	frame
	conn   FollowConn
	taskID string
	keys   followKeys
	tasks  taskSet
	bars   bars
	note   string
	// confirm: c was pressed; the next key answers "cancel the task?".
	confirm bool
	err     error // a fatal error: the task could not be read
	done    bool
	// fetched: the answer to fetching the task has come. Until it has,
	// the end of the updates does not end the view: a stream that ended
	// at once (the task had ended) leaves the answer to say how.
	fetched bool
}

// taskMsg is the answer to fetching the task.
type taskMsg struct {
	task protocol.Task
	err  error
}

// cancelledMsg is the answer to cancelling the task.
type cancelledMsg struct {
	task protocol.Task
	err  error
}

// followWidth is the widest the view draws, and its width until the
// terminal tells its own.
const followWidth = 100

// NewFollowModel returns the view following cfg.TaskID.
func NewFollowModel(cfg FollowConfig) *FollowModel {
	f := newFrame(cfg.Common, cfg.Conn.Updates(), protocol.TasksStream)
	f.width = 80
	return &FollowModel{
		frame:  f,
		conn:   cfg.Conn,
		taskID: cfg.TaskID,
		keys:   defaultFollowKeys(),
		tasks:  newTaskSet(),
		bars:   newBars(f.Styles),
	}
}

// Init starts reading updates and fetches the task. The spinner turns
// until the program ends.
func (m *FollowModel) Init() tea.Cmd {
	conn := m.conn
	fetch := m.request(func(ctx context.Context) tea.Msg {
		t, err := conn.Task(ctx)
		return taskMsg{t, err}
	})
	return tea.Batch(m.nextUpdates(), fetch, m.animate(true))
}

// task returns the followed task, if known.
func (m *FollowModel) task() (*TaskView, bool) {
	return m.tasks.Get(m.taskID)
}

// finish quits once the task is in a final state.
func (m *FollowModel) finish() tea.Cmd {
	if v, ok := m.task(); ok && v.State.Final() && !m.done {
		m.done = true
		return tea.Quit
	}
	return nil
}

// Update implements tea.Model.
func (m *FollowModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(min(msg.Width, followWidth), msg.Height)
		return m, nil
	case tea.KeyMsg:
		switch {
		case isText(msg):
			// A chunk of text ("esc") is no key press.
		case m.confirm:
			m.confirm = false
			if msg.String() != "y" && msg.String() != "Y" {
				m.note = "not cancelled"
				return m, nil
			}
			if v, ok := m.task(); ok && v.State.Final() {
				m.note = ""
				return m, nil
			}
			m.note = "cancelling…"
			conn := m.conn
			return m, m.request(func(ctx context.Context) tea.Msg {
				t, err := conn.Cancel(ctx)
				return cancelledMsg{t, err}
			})
		case key.Matches(msg, m.keys.Quit):
			m.quitting = true
			return m, tea.Quit
		case key.Matches(msg, m.keys.Cancel):
			if v, ok := m.task(); ok && v.State.Final() {
				return m, nil
			}
			m.confirm = true
			m.note = "cancel the task? y/n"
		}
		return m, nil
	case updatesMsg:
		m.eachFresh(msg.Updates, func(e *protocol.Event) {
			if e.Type == protocol.TypeProgress && e.Task != nil && e.Task.ID == m.taskID {
				m.tasks.Apply(*e.Task, e.Time)
			}
		})
		if cmd := m.finish(); cmd != nil {
			return m, cmd
		}
		if msg.Closed {
			m.closed = true
			if !m.fetched {
				return m, nil
			}
			return m, tea.Quit
		}
		return m, m.nextUpdates()
	case taskMsg:
		m.fetched = true
		if msg.err != nil {
			m.err = msg.err
			return m, tea.Quit
		}
		if _, ok := m.task(); !ok || msg.task.State.Final() {
			m.tasks.Apply(msg.task, time.Time{})
		}
		if cmd := m.finish(); cmd != nil || !m.closed {
			return m, cmd
		}
		return m, tea.Quit
	case cancelledMsg:
		if msg.err != nil {
			m.note = "cancel: " + errText(msg.err)
		} else {
			m.note = ""
		}
		return m, nil
	case spinner.TickMsg:
		return m, m.tick(msg, true)
	}
	return m, nil
}

// Result returns the task as it ended, or why following it stopped first
// (ErrStopped, ErrClosed, or the error reading the task).
func (m *FollowModel) Result() (protocol.Task, error) {
	v, ok := m.task()
	switch {
	case ok && v.State.Final():
		return v.Task, nil
	case m.err != nil:
		return protocol.Task{}, m.err
	case m.quitting:
		if ok {
			return v.Task, ErrStopped
		}
		return protocol.Task{}, ErrStopped
	}
	if ok {
		return v.Task, ErrClosed
	}
	return protocol.Task{}, ErrClosed
}

// View implements tea.Model.
func (m *FollowModel) View() string {
	st := m.Styles
	if m.err != nil {
		return ""
	}
	v, ok := m.task()
	if !ok {
		return headerLine(m.width, st.Dim.Render(m.spin.View()+" looking up task "+m.taskID+"…"), m.linkView()) + "\n"
	}
	var lines []string
	left := st.Accent.Render(taskName(&v.Task)) + st.Dim.Render(" · "+v.ID+" · "+v.Kind)
	right := ""
	if !v.State.Final() {
		right = m.linkView()
	}
	lines = append(lines, headerLine(m.width, left, right))

	state := st.TaskState(v.State).Render(Pad(stateIcon(v.State, m.spin.View())+" "+string(v.State), colState))
	eta := ""
	if d, ok := v.ETA(); ok {
		eta = "eta " + fmtDuration(d)
	} else if d, ok := v.Took(); ok {
		eta = "took " + fmtDuration(d)
	}
	nums := " " + fmtPercent(v.Fraction()) + "  " + fmtCount(v.Done, v.Total) + "  " + fmtRate(v.Rate())
	if eta != "" {
		nums += "  " + eta
	}
	barW := max(m.width-colState-1-len([]rune(nums)), 10)
	lines = append(lines, state+" "+m.bars.view(v.Fraction(), barW, v.State)+st.Dim.Render(nums))
	msg := clean(v.Message, false)
	switch {
	case m.note != "":
		lines = append(lines, st.Warn.Render(m.note))
	case msg != "":
		lines = append(lines, st.Dim.Render(msg))
	}
	if v.State.Final() {
		lines = append(lines, m.summary(v))
	} else if !m.quitting {
		lines = append(lines, m.help.View(m.keys))
	}
	for i, l := range lines {
		lines[i] = Pad(l, m.width)
	}
	return strings.Join(lines, "\n") + "\n"
}

// summary is the last line once the task ended: "✓ build succeeded in 5.0s".
func (m *FollowModel) summary(v *TaskView) string {
	text := fmt.Sprintf("%s %s %s", stateIcon(v.State, ""), taskName(&v.Task), v.State)
	if d, ok := v.Took(); ok {
		text += " after " + fmtDuration(d)
	}
	return m.Styles.TaskState(v.State).Bold(true).Render(text)
}
