package tui

import (
	"cmp"
	"context"
	"slices"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/protocol"
)

// rateWindow is how far back the rate of a running task looks.
const rateWindow = 5 * time.Second

// sample is how far a task was at a moment (server time).
type sample struct {
	at   time.Time
	done int64
}

// TaskView is a task as the screens show it: the task and its rate.
type TaskView struct {
	protocol.Task
	samples []sample
}

// Fraction returns how far the task is, from 0 to 1.
func (t *TaskView) Fraction() float64 {
	switch {
	case t.Total > 0:
		return clamp01(float64(t.Done) / float64(t.Total))
	case t.Percent > 0:
		return clamp01(t.Percent / 100)
	case t.State == protocol.TaskSucceeded:
		return 1
	}
	return 0
}

// Rate returns units of work per second: over the last few seconds while
// running, over the whole run once finished; 0 when unknown.
func (t *TaskView) Rate() float64 {
	if t.State.Final() {
		if t.Started == nil || t.Finished == nil {
			return 0
		}
		d := t.Finished.Sub(*t.Started).Seconds()
		if d <= 0 {
			return 0
		}
		return float64(t.Done) / d
	}
	if len(t.samples) < 2 {
		return 0
	}
	a, b := t.samples[0], t.samples[len(t.samples)-1]
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 || b.done < a.done {
		return 0
	}
	return float64(b.done-a.done) / d
}

// ETA returns the time left: the server's estimate when it gives one, else
// what the rate implies; false when unknown or finished.
func (t *TaskView) ETA() (time.Duration, bool) {
	if t.State.Final() {
		return 0, false
	}
	if t.ETASeconds != nil && *t.ETASeconds >= 0 {
		return time.Duration(*t.ETASeconds * float64(time.Second)), true
	}
	r := t.Rate()
	if r <= 0 || t.Total <= 0 {
		return 0, false
	}
	left := float64(t.Total-t.Done) / r
	return time.Duration(left * float64(time.Second)), true
}

// Took returns how long a finished task ran.
func (t *TaskView) Took() (time.Duration, bool) {
	if !t.State.Final() || t.Finished == nil {
		return 0, false
	}
	from := t.Created
	if t.Started != nil {
		from = *t.Started
	}
	return t.Finished.Sub(from), true
}

// observe records the task's progress at (server time) at.
func (t *TaskView) observe(at time.Time) {
	if len(t.samples) == 0 && t.Started != nil && t.Done > 0 && at.After(*t.Started) {
		// The start is a sample too: the work began at zero.
		t.samples = append(t.samples, sample{at: *t.Started})
	}
	if n := len(t.samples); n > 0 && t.samples[n-1].done > t.Done {
		t.samples = t.samples[:0] // it went back: start over
	}
	t.samples = append(t.samples, sample{at: at, done: t.Done})
	cut := 0
	for cut < len(t.samples)-2 && at.Sub(t.samples[cut].at) > rateWindow {
		cut++
	}
	t.samples = t.samples[cut:]
}

// taskSet is the tasks a screen knows, newest first, kept current by
// progress events and refreshed by listing.
type taskSet struct {
	byID  map[string]*TaskView
	order []*TaskView
}

// newTaskSet returns an empty set.
func newTaskSet() taskSet {
	return taskSet{byID: map[string]*TaskView{}}
}

// Apply records a task's new state, seen at (server time) at. It reports
// whether the task was new to the set.
func (s *taskSet) Apply(t protocol.Task, at time.Time) bool {
	if s.byID == nil {
		s.byID = map[string]*TaskView{}
	}
	v, ok := s.byID[t.ID]
	if !ok {
		v = &TaskView{}
		s.byID[t.ID] = v
		s.order = append(s.order, v)
	}
	v.Task = t
	if at.IsZero() {
		at = t.Created
		if t.Started != nil {
			at = *t.Started
		}
	}
	v.observe(at)
	if !ok {
		s.sort()
	}
	return !ok
}

// Replace takes a full list (after a reset or at start): tasks not in it
// are dropped, the others keep their rate samples.
func (s *taskSet) Replace(ts []protocol.Task) {
	keep := make(map[string]*TaskView, len(ts))
	s.order = s.order[:0]
	for _, t := range ts {
		v, ok := s.byID[t.ID]
		if !ok {
			v = &TaskView{}
		}
		v.Task = t
		keep[t.ID] = v
		s.order = append(s.order, v)
	}
	s.byID = keep
	s.sort()
}

// sort orders the tasks newest first.
func (s *taskSet) sort() {
	slices.SortStableFunc(s.order, func(a, b *TaskView) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
}

// Get returns the task with id.
func (s *taskSet) Get(id string) (*TaskView, bool) {
	v, ok := s.byID[id]
	return v, ok
}

// All returns every task, newest first. The slice is the set's own.
func (s *taskSet) All() []*TaskView { return s.order }

// Live returns the queued and running tasks, newest first.
func (s *taskSet) Live() []*TaskView {
	var out []*TaskView
	for _, v := range s.order {
		if !v.State.Final() {
			out = append(out, v)
		}
	}
	return out
}

// Len returns how many tasks the set holds.
func (s *taskSet) Len() int { return len(s.order) }

func clamp01(f float64) float64 { return max(0, min(1, f)) }

// tasksMsg is the answer to a task listing. Gen tells answers to old
// listings apart from the latest.
type tasksMsg struct {
	Gen   int
	Tasks []protocol.Task
	Err   error
}

// listTasks returns a command that lists the tasks.
func listTasks(f *frame, list func(context.Context) ([]protocol.Task, error), gen int) tea.Cmd {
	return f.request(func(ctx context.Context) tea.Msg {
		ts, err := list(ctx)
		return tasksMsg{Gen: gen, Tasks: ts, Err: err}
	})
}
