package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/push/protocol"
)

// Config sets up the runner; zero fields take the defaults.
type Config struct {
	// MaxRunning is how many tasks run at once (default 64); the rest queue.
	MaxRunning int
	// MaxQueued is how many tasks may wait for a run slot (default
	// 1,000); a start beyond it is refused with ErrBusy.
	MaxQueued int
	// MaxExternal is how many external tasks may be running at once
	// (default 1,000; they take no run slot); a start beyond it is
	// refused with ErrBusy.
	MaxExternal int
	// StallTimeout fails an external task that reports nothing for this
	// long (default 10 min).
	StallTimeout time.Duration
	// KeepFinished and KeepFor bound how many finished tasks are kept, and
	// for how long (defaults 1,000 and 24 h); older ones are forgotten.
	KeepFinished int
	KeepFor      time.Duration
	// MinInterval is the least time between two progress events of one
	// task (default 100 ms, so at most 10 per second); state changes are
	// always sent at once.
	MinInterval time.Duration
	// DedupeWindow is how long a start's idempotency key (Spec.Key)
	// stands for the task it started (default 10 min).
	DedupeWindow time.Duration
}

// DefaultConfig returns the runner's defaults, the values the zero fields
// of a Config take.
func DefaultConfig() Config {
	return Config{
		MaxRunning:   64,
		MaxQueued:    1000,
		MaxExternal:  1000,
		StallTimeout: 10 * time.Minute,
		KeepFinished: 1000,
		KeepFor:      24 * time.Hour,
		MinInterval:  100 * time.Millisecond,
		DedupeWindow: 10 * time.Minute,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	orDefault(&c.MaxRunning, d.MaxRunning)
	orDefault(&c.MaxQueued, d.MaxQueued)
	orDefault(&c.MaxExternal, d.MaxExternal)
	orDefault(&c.StallTimeout, d.StallTimeout)
	orDefault(&c.KeepFinished, d.KeepFinished)
	orDefault(&c.KeepFor, d.KeepFor)
	orDefault(&c.MinInterval, d.MinInterval)
	orDefault(&c.DedupeWindow, d.DedupeWindow)
	return c
}

// orDefault sets *v to def when it is zero or negative.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Runner runs background tasks and publishes their progress on the tasks
// stream. A task belongs to no connection: it runs on its own goroutine
// under a context that only Cancel and Shutdown cancel. Its methods are
// safe for concurrent use.
type Runner struct {
	cfg    Config
	stream Stream
	store  Store // nil: tasks are kept in memory only
	peers  Peers // nil: every task is this server's
	keys   Keys  // the store's, or in memory
	log    *slog.Logger

	kindsMu sync.RWMutex
	kinds   map[string]kind

	mu       sync.Mutex
	tasks    map[string]*task
	finished []*task // oldest first, for forgetting
	running  int     // tasks holding a run slot
	queue    []*task // waiting for a slot, oldest first
	// external counts external tasks not ended (see MaxExternal). It goes
	// up under mu, at a start that checked it, and down without mu, as
	// the task's final state is set (task.releaseLocked), so a client told
	// a task ended is never refused a start for it.
	external atomic.Int64
	closing  bool
	wg       sync.WaitGroup // task goroutines
	// starting holds the idempotency keys whose start is under way here,
	// each with a channel closed when it is done.
	starting map[string]chan struct{}
}

// New returns a runner that announces its tasks on stream, with the kinds
// demo and external. It takes back the tasks store has kept (see load):
// their events go out before New returns. store may be nil (tasks are
// kept in memory only); peers, when not nil, are the other servers that
// share store, and must be served (Peers.Serve with Local) for as long as
// the runner runs. A nil log discards.
func New(ctx context.Context, stream Stream, cfg Config, store Store, peers Peers, log *slog.Logger) (*Runner, error) {
	if peers != nil && store == nil {
		return nil, errors.New("tasks: task peers need the task store the servers share")
	}
	if _, shared := store.(Peers); shared && peers == nil {
		// Without peers this server would never say it is alive, and the
		// others would end its tasks as those of a vanished server.
		return nil, errors.New("tasks: the task store is shared by several servers; give it as the task peers too")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{cfg: cfg.withDefaults(), stream: stream, store: store, peers: peers, log: log,
		kinds: make(map[string]kind), tasks: make(map[string]*task), starting: make(map[string]chan struct{})}
	if keys, ok := store.(Keys); ok {
		r.keys = keys
	} else {
		r.keys = newMemKeys()
	}
	RegisterKind(r, "demo", runDemo)
	r.kinds[kindExternal] = kind{parse: parseExternal, external: true}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Get returns the current state of a task of this server (see Find for
// the tasks of every server).
func (r *Runner) Get(id string) (protocol.Task, error) {
	t, err := r.lookup(id)
	if err != nil {
		return protocol.Task{}, err
	}
	return r.current(t)
}

// List returns every task of this server still kept, newest first (see
// ListAll for the tasks of every server).
func (r *Runner) List() []protocol.Task {
	r.mu.Lock()
	gone := r.forgetLocked(time.Now())
	all := make([]*task, 0, len(r.tasks))
	for _, t := range r.tasks {
		if !t.lost.Load() {
			all = append(all, t)
		}
	}
	r.mu.Unlock()
	r.deleteRecords(gone)
	now := time.Now()
	out := make([]protocol.Task, 0, len(all))
	for _, t := range all {
		t.mu.Lock()
		out = append(out, t.view(now))
		t.mu.Unlock()
	}
	sortTasks(out)
	return out
}

// sortTasks sorts tasks newest first.
func sortTasks(tasks []protocol.Task) {
	slices.SortFunc(tasks, func(a, b protocol.Task) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
}

// Find returns the current state of a task of any server that shares the
// task store: this server's own, or the record of another's.
func (r *Runner) Find(ctx context.Context, id string) (protocol.Task, error) {
	t, err := r.Get(id)
	if err == nil || r.peers == nil || !errors.Is(err, ErrNotFound) {
		return t, err
	}
	t, perr := r.peers.Get(ctx, id)
	if errors.Is(perr, ErrNotFound) {
		return protocol.Task{}, err // this server's message says how long tasks are kept
	}
	return t, perr
}

// ListAll returns every task still kept by any server that shares the task
// store, newest first.
func (r *Runner) ListAll(ctx context.Context) ([]protocol.Task, error) {
	local := r.List()
	if r.peers == nil {
		return local, nil
	}
	remote, err := r.peers.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the other servers' tasks: %w", err)
	}
	ids := make(map[string]bool, len(local))
	for _, t := range local {
		ids[t.ID] = true
	}
	for _, t := range remote {
		if !ids[t.ID] {
			local = append(local, t)
		}
	}
	sortTasks(local)
	return local, nil
}

// Cancel asks a task to stop, on whichever server runs it. A queued task
// is cancelled at once; a running one when its function sees its context
// cancelled. Cancelling a finished task is ErrFinished.
func (r *Runner) Cancel(ctx context.Context, id string) (protocol.Task, error) {
	t, err := r.lookup(id)
	if err != nil {
		if r.peers != nil {
			return r.peers.Cancel(ctx, id)
		}
		return protocol.Task{}, err
	}
	return r.cancelWith(ctx, t, ErrCancelled)
}

// cancelWith cancels t, a task of this server, for cause, and returns it
// as it is then.
func (r *Runner) cancelWith(ctx context.Context, t *task, cause error) (protocol.Task, error) {
	t.mu.Lock()
	if t.snap.State.Final() {
		snap := t.snap
		t.mu.Unlock()
		return snap, fmt.Errorf("%w: task %s is %s", ErrFinished, snap.ID, snap.State)
	}
	if t.kept {
		t.mu.Unlock()
		return protocol.Task{}, errKept("cancel")
	}
	queued := t.snap.State == protocol.TaskQueued && !t.external
	// Cancelled under t.mu, so that a shutdown does not keep the task (see
	// keep) once this has answered.
	t.cancel(cause)
	t.mu.Unlock()
	if queued && r.dequeue(t) {
		msg := "cancelled before it started"
		if errors.Is(cause, errUnwatched) {
			msg = protocol.MessageUnwatched
		}
		t.finish(ctx, protocol.TaskCancelled, msg)
		r.ended(t, false)
		r.wg.Done()
	}
	return r.current(t)
}

// Report applies an external task's progress report, on whichever server
// runs it.
func (r *Runner) Report(ctx context.Context, id string, rep protocol.ProgressReport) (protocol.Task, error) {
	t, err := r.lookup(id)
	if err != nil {
		if r.peers != nil {
			if err := checkReport(rep); err != nil {
				return protocol.Task{}, err
			}
			return r.peers.Report(ctx, id, rep)
		}
		return protocol.Task{}, err
	}
	return r.report(ctx, t, rep)
}

// report applies a report to t, a task of this server, and returns it as
// it is then.
func (r *Runner) report(ctx context.Context, t *task, rep protocol.ProgressReport) (protocol.Task, error) {
	if !t.external {
		return protocol.Task{}, protocol.Errorf(http.StatusConflict, protocol.CodeConflict,
			"task %s is of kind %s, which reports its own progress; only external tasks take reports", t.snap.ID, t.snap.Kind)
	}
	if err := t.report(ctx, rep); err != nil {
		return protocol.Task{}, err
	}
	return r.current(t)
}

// lookup returns a task of this server. One that another server has
// taken over is not this server's any more.
func (r *Runner) lookup(id string) (*task, error) {
	r.mu.Lock()
	gone := r.forgetLocked(time.Now())
	t, ok := r.tasks[id]
	r.mu.Unlock()
	r.deleteRecords(gone)
	if !ok || t.lost.Load() {
		return nil, r.notFound(id)
	}
	return t, nil
}

// current returns t as clients see it now; ErrNotFound once another
// server has taken it over.
func (r *Runner) current(t *task) (protocol.Task, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lost.Load() {
		return protocol.Task{}, r.notFound(t.snap.ID)
	}
	return t.view(time.Now()), nil
}

// notFound is ErrNotFound for task id, saying how long tasks are kept.
func (r *Runner) notFound(id string) error {
	return fmt.Errorf("%w: %s (finished tasks are kept for %s, at most %d of them)", ErrNotFound, id, r.cfg.KeepFor, r.cfg.KeepFinished)
}

// Shutdown cancels every live task with the message "server shutting
// down" and waits until their final events are published, or ctx ends.
// The queued tasks are cancelled together, on many goroutines at once, so
// that their records and events go to the store in a few grouped writes
// rather than one after another; those that ctx leaves no time for stay
// queued in the task store, and a restart ends them as interrupted.
// An external task is kept instead when the server has a task store of
// its own (its work goes on elsewhere and it is taken back on the next
// start): its latest progress is published and saved, and reports and
// cancels from then on are answered 503, to be sent again in a moment.
// Start refuses with ErrShutdown from then on.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	queue := r.queue
	r.queue = nil
	live := make([]*task, 0, len(r.tasks))
	for _, t := range r.tasks {
		live = append(live, t)
	}
	r.mu.Unlock()
	left := eachUntil(ctx, queue, func(t *task) {
		t.cancel(ErrShutdown)
		t.finish(ctx, protocol.TaskCancelled, ErrShutdown.Error())
		r.ended(t, false)
		r.wg.Done()
	})
	for _, t := range left {
		t.cancel(ErrShutdown)
		r.wg.Done()
	}
	if len(left) > 0 {
		r.log.Warn("shutdown: queued tasks not cancelled in time; they end as interrupted at the next start", "tasks", len(left))
	}
	eachUntil(ctx, live, func(t *task) {
		if t.external && r.keepsExternal() {
			// Kept unless it has ended or is ending; its goroutine then
			// ends without ending it.
			t.keep(ctx)
		}
		t.cancel(ErrShutdown)
	})
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tasks still running: %w", ctx.Err())
	}
}

// shutdownWorkers is how many tasks a shutdown ends or keeps at once:
// enough for the store and the stream to group their writes (one
// transaction, one append for many), few enough to bound the goroutines.
const shutdownWorkers = 256

// eachUntil calls fn for each of ts on up to shutdownWorkers goroutines,
// handing out no more once ctx has ended. It returns the tasks it did not
// get to once the calls made have returned, or once ctx has ended: a call
// under way then (a write to a store that is slow to answer) ends on its
// own, and the shutdown does not wait for it.
func eachUntil(ctx context.Context, ts []*task, fn func(*task)) (left []*task) {
	next := make(chan *task)
	var wg sync.WaitGroup
	for range min(len(ts), shutdownWorkers) {
		wg.Go(func() {
			for t := range next {
				fn(t)
			}
		})
	}
	i := 0
feed:
	for ; i < len(ts); i++ {
		select {
		case next <- ts[i]:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return ts[i:]
}
