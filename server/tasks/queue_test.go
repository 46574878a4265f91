package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// Run slots, the queue, and forgetting finished tasks.

// gates registers the kind "gate": {"gate":"a"} runs until the test opens
// gate "a" (then succeeds) or it is cancelled. It counts how many run at
// once.
type gates struct {
	mu         sync.Mutex
	gates      map[string]chan struct{}
	started    map[string]bool
	running    int
	maxRunning int
}

type gateParams struct {
	Gate string `json:"gate"`
}

func (p *gateParams) Validate() error {
	if p.Gate == "" {
		return errors.New("gate is required")
	}
	return nil
}

func newGates(r *tasks.Runner) *gates {
	g := &gates{gates: make(map[string]chan struct{}), started: make(map[string]bool)}
	tasks.RegisterKind(r, "gate", func(ctx context.Context, p gateParams, _ *tasks.Reporter) error {
		g.mu.Lock()
		g.started[p.Gate] = true
		g.running++
		g.maxRunning = max(g.maxRunning, g.running)
		ch := g.gateLocked(p.Gate)
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.running--
			g.mu.Unlock()
		}()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return g
}

func (g *gates) gateLocked(name string) chan struct{} {
	ch, ok := g.gates[name]
	if !ok {
		ch = make(chan struct{})
		g.gates[name] = ch
	}
	return ch
}

func (g *gates) open(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gateLocked(name))
}

func (g *gates) state() (started map[string]bool, maxRunning int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	started = make(map[string]bool)
	for k, v := range g.started {
		started[k] = v
	}
	return started, g.maxRunning
}

func TestMaxRunningQueuesTheRest(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{MaxRunning: 2}, nil, nil)
	gates := newGates(r.Runner)
	ids := make(map[string]string)
	for _, g := range []string{"a", "b", "c", "d"} {
		ids[g] = r.start("gate", g, `{"gate":"`+g+`"}`).ID
	}
	r.waitTask(ids["a"], "running", isRunning)
	r.waitTask(ids["b"], "running", isRunning)
	for _, g := range []string{"c", "d"} {
		if got := r.get(ids[g]); got.State != protocol.TaskQueued || got.Started != nil {
			t.Errorf("with 2 running, task %s is %s (started %v); want queued", g, tasktest.String(got), got.Started)
		}
	}

	// A slot frees up: the oldest queued task starts, the other waits.
	gates.open("a")
	r.waitTask(ids["a"], "succeeded", isSucceeded)
	r.waitTask(ids["c"], "running", isRunning)
	if got := r.get(ids["d"]); got.State != protocol.TaskQueued {
		t.Errorf("task d is %s; want still queued", tasktest.String(got))
	}

	// Cancelling a queued task ends it at once; it never runs.
	if _, err := r.Cancel(t.Context(), ids["d"]); err != nil {
		t.Fatal(err)
	}
	d := r.waitTask(ids["d"], "cancelled", func(tk protocol.Task) bool { return tk.State.Final() })
	if d.State != protocol.TaskCancelled || d.Message != "cancelled before it started" || d.Started != nil || d.Finished == nil {
		t.Errorf("cancelled queued task is %s (started %v); want cancelled \"cancelled before it started\", never started", tasktest.String(d), d.Started)
	}
	if _, err := r.Cancel(t.Context(), ids["d"]); !errors.Is(err, tasks.ErrFinished) {
		t.Errorf("cancelling the cancelled task again: %v; want ErrFinished", err)
	}

	// It held no slot: a new task still queues behind the two running.
	ids["e"] = r.start("gate", "", `{"gate":"e"}`).ID
	if got := r.get(ids["e"]); got.State != protocol.TaskQueued {
		t.Errorf("with b and c running, a new task is %s; want queued", tasktest.String(got))
	}
	gates.open("b")
	r.waitTask(ids["e"], "running", isRunning)
	gates.open("c")
	gates.open("e")
	for _, g := range []string{"b", "c", "e"} {
		r.waitTask(ids[g], "succeeded", isSucceeded)
	}
	started, maxRunning := gates.state()
	if started["d"] {
		t.Error("the task cancelled while queued ran anyway")
	}
	if maxRunning > 2 {
		t.Errorf("%d tasks ran at once; MaxRunning is 2", maxRunning)
	}
	tasktest.CheckOrder(t, r.stream.seen())
}

// waitGone waits until the runner no longer knows task id, within wait.
func (r *runner) waitGone(id string, wait time.Duration) {
	r.t.Helper()
	testwait.Until(r.t, wait, taskPollEvery, func() error {
		got, err := r.Get(id)
		switch {
		case errors.Is(err, tasks.ErrNotFound):
			return nil
		case err != nil:
			r.t.Fatalf("get %s: %v; want ErrNotFound", id, err)
		}
		return fmt.Errorf("task %s is still kept: %s", id, tasktest.String(got))
	})
}

func TestKeepFinished(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{KeepFinished: 2}, nil, nil)
	live := r.start("external", "live", "")
	var ids []string
	for i := range 3 {
		task := r.start("demo", fmt.Sprintf("done %d", i), `{"total":1,"interval":"1ms"}`)
		r.waitTask(task.ID, "succeeded", isSucceeded)
		ids = append(ids, task.ID)
	}
	// With KeepFinished 2 and three finished tasks, the oldest goes.
	r.waitGone(ids[0], taskWait)
	var got []string
	for _, tk := range r.List() {
		got = append(got, tk.ID)
	}
	if want := []string{ids[2], ids[1], live.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List gives %v; want the two newest finished tasks and the live one %v", got, want)
	}
	if _, err := r.Cancel(t.Context(), ids[0]); !errors.Is(err, tasks.ErrNotFound) {
		t.Errorf("cancel of a forgotten task: %v; want ErrNotFound", err)
	}
	if _, err := r.Find(t.Context(), ids[0]); !errors.Is(err, tasks.ErrNotFound) {
		t.Errorf("find a forgotten task: %v; want ErrNotFound", err)
	}
	if got := r.get(live.ID); got.State != protocol.TaskRunning {
		t.Errorf("the live task is %s; want running", tasktest.String(got))
	}
}

func TestKeepFor(t *testing.T) {
	const keepFor = 30 * time.Millisecond
	r := startRunner(t, nil, tasks.Config{KeepFor: keepFor}, nil, nil)
	live := r.start("external", "live", "")
	task := r.start("demo", "", `{"total":1,"interval":"1ms"}`)
	r.waitTask(task.ID, "succeeded", isSucceeded)

	// Nothing else happens on the runner: the task must still be forgotten.
	r.waitGone(task.ID, 2*time.Second)
	for _, tk := range r.List() {
		if tk.ID == task.ID {
			t.Errorf("List still has %s, finished longer than KeepFor %s ago", task.ID, keepFor)
		}
	}
	if got := r.get(live.ID); got.State != protocol.TaskRunning {
		t.Errorf("the live task is %s; KeepFor forgets only finished tasks", tasktest.String(got))
	}
}
