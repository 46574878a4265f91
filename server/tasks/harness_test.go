package tasks_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// The runner's tests drive a Runner through its Go API, with the tasks
// stream and the task store in memory. What watchers see over the
// transports, and the HTTP API's answers, are the server's tests.

// taskWait bounds every wait for a condition; conditions are polled every
// taskPollEvery.
const (
	taskWait      = 10 * time.Second
	taskPollEvery = 2 * time.Millisecond
)

// memStream is the tasks stream in memory: the events published, in
// order, with seqs from 1.
type memStream struct {
	mu     sync.Mutex
	events []protocol.Event
	// watched is what LastWatched answers, by task id.
	watched map[string]time.Time
}

var _ tasks.Stream = (*memStream)(nil)

func (s *memStream) Publish(_ context.Context, ev protocol.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev.Stream, ev.Epoch, ev.Seq = protocol.TasksStream, "test", uint64(len(s.events))+1
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	s.events = append(s.events, ev)
	return nil
}

func (s *memStream) Latest(_ context.Context, n int, fn func(protocol.Event)) error {
	evs := s.seen()
	for _, ev := range evs[max(0, len(evs)-n):] {
		fn(ev)
	}
	return nil
}

func (s *memStream) LastWatched(t protocol.Task) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watched[t.ID]
}

// setWatched sets what LastWatched answers for task id.
func (s *memStream) setWatched(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watched == nil {
		s.watched = make(map[string]time.Time)
	}
	s.watched[id] = at
}

// seen returns a copy of the events so far.
func (s *memStream) seen() []protocol.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// waitFor waits until cond holds for the events so far, and returns them.
func (s *memStream) waitFor(t testing.TB, what string, cond func([]protocol.Event) bool) []protocol.Event {
	t.Helper()
	var evs []protocol.Event
	testwait.Until(t, taskWait, taskPollEvery, func() error {
		if evs = s.seen(); cond(evs) {
			return nil
		}
		return fmt.Errorf("no %s on the tasks stream; it has %s", what, tasktest.EventsString(evs))
	})
	return evs
}

// waitFinal waits for a final state of task id and returns it.
func (s *memStream) waitFinal(t testing.TB, id string) protocol.Task {
	t.Helper()
	evs := s.waitFor(t, "final state of "+id, func(evs []protocol.Event) bool { return tasktest.Final(evs, id) != nil })
	return *tasktest.Final(evs, id)
}

// memStore is a task store in memory.
type memStore struct {
	mu      sync.Mutex
	records map[string]protocol.Task
}

var _ tasks.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{records: make(map[string]protocol.Task)} }

func (m *memStore) SaveTask(_ context.Context, t protocol.Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[t.ID] = t
	return nil
}

func (m *memStore) DeleteTask(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, id)
	return nil
}

func (m *memStore) LoadTasks(context.Context) ([]protocol.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.records)), nil
}

// runner is a Runner under test, with its stream.
type runner struct {
	*tasks.Runner
	t      *testing.T
	stream *memStream
}

// startRunner starts a runner for cfg on stream with store and peers
// (each may be nil; a nil stream is a new one), with progress events at
// most 1 ms apart unless cfg says otherwise and logs going to the test's
// log. Cleanup shuts it down.
func startRunner(t *testing.T, stream *memStream, cfg tasks.Config, store tasks.Store, peers tasks.Peers) *runner {
	t.Helper()
	log := testlog.Logger(t, slog.LevelInfo) // its cleanup runs after the runner's
	if stream == nil {
		stream = &memStream{}
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = time.Millisecond
	}
	r, err := tasks.New(context.Background(), stream, cfg, store, peers, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, r) })
	return &runner{Runner: r, t: t, stream: stream}
}

// shutdown shuts r down, failing the test if its tasks do not end.
func shutdown(t testing.TB, r *tasks.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), taskWait)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// start starts a task, failing the test if it is refused.
func (r *runner) start(kind, name, params string) protocol.Task {
	r.t.Helper()
	task, _, err := r.Start(r.t.Context(), tasks.Spec{Kind: kind, Name: name, Params: []byte(params)})
	if err != nil {
		r.t.Fatalf("start %s %s: %v", kind, params, err)
	}
	return task
}

// get returns a task, failing the test if it is not there.
func (r *runner) get(id string) protocol.Task {
	r.t.Helper()
	task, err := r.Get(id)
	if err != nil {
		r.t.Fatal(err)
	}
	return task
}

// report applies a report, failing the test if it is refused.
func (r *runner) report(id string, rep protocol.ProgressReport) protocol.Task {
	r.t.Helper()
	task, err := r.Report(r.t.Context(), id, rep)
	if err != nil {
		r.t.Fatalf("report %+v: %v", rep, err)
	}
	return task
}

// waitTask waits until task id satisfies cond, and returns it.
func (r *runner) waitTask(id, what string, cond func(protocol.Task) bool) protocol.Task {
	r.t.Helper()
	var task protocol.Task
	testwait.Until(r.t, taskWait, taskPollEvery, func() error {
		var err error
		if task, err = r.Get(id); err != nil {
			return err
		}
		if !cond(task) {
			return fmt.Errorf("task %s: no %s; it is %s", id, what, tasktest.String(task))
		}
		return nil
	})
	return task
}

// ptr returns a pointer to v, for the fields of a report.
func ptr[T any](v T) *T { return &v }

func isRunning(tk protocol.Task) bool   { return tk.State == protocol.TaskRunning }
func isSucceeded(tk protocol.Task) bool { return tk.State == protocol.TaskSucceeded }
