package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// Why a task's context was cancelled, as its cause.
var (
	// ErrTaskCancelled: someone asked for the task to be cancelled.
	ErrTaskCancelled = errors.New("cancelled on request")
	// ErrTaskShutdown: the server is shutting down.
	ErrTaskShutdown = errors.New("server shutting down")
	// errTaskStalled: an external task reported nothing for too long.
	errTaskStalled = errors.New("stalled")
)

// Errors callers of the task API branch on.
var (
	ErrTaskNotFound = errors.New("task not found")
	ErrTaskFinished = errors.New("task already finished")
	ErrUnknownKind  = errors.New("unknown task kind")
	errBadParams    = errors.New("bad task params")
	errParamsJSON   = errors.New("task params")
	// ErrTaskOwnerSilent is wrapped, along with ErrUnavailable, by the
	// errors of TaskPeers when the server that runs a task does not
	// answer: the API answers 503 with the error's text, which says which
	// server and what becomes of its tasks, where other unavailable
	// errors get a message without the details.
	ErrTaskOwnerSilent = errors.New("the server that runs the task does not answer")
)

// TaskConfig sets up the task runner; zero fields take the defaults.
type TaskConfig struct {
	// MaxRunning is how many tasks run at once (default 64); the rest queue.
	MaxRunning int
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
}

func (c TaskConfig) withDefaults() TaskConfig {
	if c.MaxRunning <= 0 {
		c.MaxRunning = 64
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 10 * time.Minute
	}
	if c.KeepFinished <= 0 {
		c.KeepFinished = 1000
	}
	if c.KeepFor <= 0 {
		c.KeepFor = 24 * time.Hour
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 100 * time.Millisecond
	}
	return c
}

// Tasks runs background tasks and publishes their progress on the tasks
// stream. A task belongs to no connection: it runs on its own goroutine
// under a context that only Cancel and Shutdown cancel.
type Tasks struct {
	cfg   TaskConfig
	hub   *Hub
	store TaskStore // nil: tasks are kept in memory only
	peers TaskPeers // nil: every task is this server's
	log   *slog.Logger

	kindsMu sync.RWMutex
	kinds   map[string]kind

	mu       sync.Mutex
	tasks    map[string]*task
	finished []*task // oldest first, for forgetting
	running  int     // tasks holding a run slot
	queue    []*task // waiting for a slot, oldest first
	closing  bool
	wg       sync.WaitGroup // task goroutines
}

// kind is a registered task kind: parse checks a start request's params
// and returns what the task needs to run.
type kind struct {
	parse    func(params json.RawMessage) (parsedTask, error)
	external bool // reports through the HTTP API and needs no run slot
}

// parsedTask is a start request's params made ready to run.
type parsedTask struct {
	run   func(ctx context.Context, r *Reporter) error // nil for external tasks
	total int64                                        // known at start, if any
}

// TaskStore keeps task records across restarts, so that finished tasks can
// still be listed, a task interrupted by a crash is reported as such, and
// an external task goes on (see Tasks.load).
//
// A store shared by several servers (see TaskPeers) records which server
// saved each task; the server saves its tasks' progress too, not only
// their changes of state, since the others read it from there.
type TaskStore interface {
	// SaveTask stores the task's record, replacing any earlier one. A
	// shared store refuses with ErrTaskTaken once another server has
	// changed the record.
	SaveTask(ctx context.Context, t protocol.Task) error
	// DeleteTask forgets a task.
	DeleteTask(ctx context.Context, id string) error
	// LoadTasks returns the records this server takes back when it
	// starts: every stored record, or for a shared store only those this
	// server saved (the others' tasks are theirs).
	LoadTasks(ctx context.Context) ([]protocol.Task, error)
}

func newTasks(ctx context.Context, hub *Hub, cfg TaskConfig, store TaskStore, peers TaskPeers, log *slog.Logger) (*Tasks, error) {
	if peers != nil && store == nil {
		return nil, errors.New("tasks: task peers need the task store the servers share")
	}
	if _, shared := store.(TaskPeers); shared && peers == nil {
		// Without peers this server would never say it is alive, and the
		// others would end its tasks as those of a vanished server.
		return nil, errors.New("tasks: the task store is shared by several servers; give it as the task peers too")
	}
	ts := &Tasks{cfg: cfg.withDefaults(), hub: hub, store: store, peers: peers, log: log, kinds: make(map[string]kind), tasks: make(map[string]*task)}
	RegisterKind(ts, "demo", runDemo)
	ts.kinds["external"] = kind{parse: parseExternal, external: true}
	if err := ts.load(ctx); err != nil {
		return nil, err
	}
	return ts, nil
}

// load brings back the stored tasks. One that had not ended was running in
// a process that died, or that shut down. An external task's work goes on
// elsewhere: unless the task store is shared (see TaskPeers), it stays as
// it was, at the progress its watchers last saw, takes reports again and
// has its stall timer started afresh. Any other task ran in that process:
// it ends now as failed, at the progress its watchers last saw, and they
// are told.
func (ts *Tasks) load(ctx context.Context) error {
	if ts.store == nil {
		return nil
	}
	records, err := ts.store.LoadTasks(ctx)
	if err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	slices.SortFunc(records, func(a, b protocol.Task) int { return a.Created.Compare(b.Created) })
	seen := ts.lastSeen(ctx, records)
	var resume []*task
	for _, rec := range records {
		if v, ok := seen[rec.ID]; ok && !rec.State.Final() && v.Percent >= rec.Percent {
			// The record is saved now and then; the events are what
			// watchers saw last, and progress never goes back.
			rec.Done, rec.Total, rec.Percent, rec.Message = v.Done, v.Total, v.Percent, v.Message
		}
		t := &task{ts: ts, snap: rec, external: rec.Kind == "external"}
		t.ctx, t.cancel = context.WithCancelCause(context.Background())
		ts.tasks[rec.ID] = t
		if t.external && !rec.State.Final() && ts.peers == nil {
			t.reports = make(chan error, 1)
			resume = append(resume, t)
			continue
		}
		t.cancel(ErrTaskShutdown)
		if !rec.State.Final() {
			t.finish(ctx, protocol.TaskFailed, "interrupted by server restart")
		}
		t.finishedAt = t.snap.Created
		if t.snap.Finished != nil {
			t.finishedAt = *t.snap.Finished
		}
		ts.finished = append(ts.finished, t)
	}
	slices.SortFunc(ts.finished, func(a, b *task) int { return a.finishedAt.Compare(b.finishedAt) })
	ts.deleteRecords(ts.forgetLocked(time.Now()))
	for _, t := range resume {
		// Announced as running again (a queued one as started) here,
		// while the server is being made; its goroutine only waits for
		// its reports.
		t.mu.Lock()
		t.startLocked()
		t.mu.Unlock()
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			t.await(false)
		}()
	}
	return nil
}

// keepsExternal reports whether an external task still running when the
// server shuts down is kept for the next start rather than cancelled: its
// work goes on elsewhere, and load takes it back. That needs a task store
// of this server's own; a shared one (see TaskPeers) is left to the other
// servers, which end the tasks of a server that is gone.
func (ts *Tasks) keepsExternal() bool {
	return ts.store != nil && ts.peers == nil
}

// save stores a task's record, if there is a task store. A failure is
// logged: the task goes on, it is only the record that may be stale. The
// error is returned for ErrTaskTaken, on which the task stops.
func (ts *Tasks) save(ctx context.Context, snap protocol.Task) error {
	if ts.store == nil {
		return nil
	}
	err := ts.store.SaveTask(context.WithoutCancel(ctx), snap)
	if err != nil && !errors.Is(err, ErrTaskTaken) {
		ts.log.Error("save task", "task", snap.ID, "err", err)
	}
	return err
}

// lastSeenScan bounds how many of the tasks stream's latest events load
// reads to find what watchers last saw of the unfinished tasks.
const lastSeenScan = 4096

// lastSeen returns the newest view the tasks stream's latest events hold
// of each unfinished task among records. A task whose last event is older
// than that keeps the progress its record has.
func (ts *Tasks) lastSeen(ctx context.Context, records []protocol.Task) map[string]protocol.Task {
	unfinished := make(map[string]bool)
	for _, rec := range records {
		if !rec.State.Final() {
			unfinished[rec.ID] = true
		}
	}
	if len(unfinished) == 0 {
		return nil
	}
	info, err := ts.hub.store.Info(ctx, protocol.TasksStream)
	if err != nil {
		ts.log.Warn("read the tasks stream for the last progress of interrupted tasks", "err", err)
		return nil
	}
	after := info.First - 1
	if info.Last > lastSeenScan {
		after = max(after, info.Last-lastSeenScan)
	}
	seen := make(map[string]protocol.Task)
	for after < info.Last {
		events, _, err := ts.hub.store.Read(ctx, protocol.TasksStream, after, 1024)
		if err != nil {
			ts.log.Warn("read the tasks stream for the last progress of interrupted tasks", "err", err)
			break
		}
		if len(events) == 0 {
			break
		}
		for _, ev := range events {
			if ev.Task != nil && unfinished[ev.Task.ID] {
				seen[ev.Task.ID] = *ev.Task
			}
			after = ev.Seq
		}
	}
	return seen
}

// RegisterKind makes a task kind available to POST /v1/tasks under name.
// A start request's fields other than "kind" and "name" are decoded into P
// (unknown fields refused); if P has a Validate() error method it is called
// too, so bad params get a 400 before anything runs, and if it has a
// TaskTotal() int64 method its answer is the task's total from the start
// (the answer to the start request shows it). run is called on the
// task's own goroutine; it reports through r and ends the task by
// returning: nil succeeds, an error fails it with the error's text, and a
// cancelled ctx cancels it. A panic in run fails the task, not the server.
func RegisterKind[P any](ts *Tasks, name string, run func(ctx context.Context, params P, r *Reporter) error) {
	parse := func(raw json.RawMessage) (parsedTask, error) {
		var p P
		if err := decodeParams(raw, &p); err != nil {
			return parsedTask{}, fmt.Errorf("%w: %w", errParamsJSON, err)
		}
		if v, ok := any(&p).(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return parsedTask{}, err
			}
		}
		parsed := parsedTask{run: func(ctx context.Context, r *Reporter) error { return run(ctx, p, r) }}
		if v, ok := any(&p).(interface{ TaskTotal() int64 }); ok {
			parsed.total = v.TaskTotal()
		}
		return parsed, nil
	}
	ts.kindsMu.Lock()
	defer ts.kindsMu.Unlock()
	ts.kinds[name] = kind{parse: parse}
}

// Start creates a task of the given kind and runs it, or queues it when
// MaxRunning tasks are running. params are the kind's parameters as JSON.
func (ts *Tasks) Start(ctx context.Context, kindName, name string, params json.RawMessage) (protocol.Task, error) {
	ts.kindsMu.RLock()
	k, ok := ts.kinds[kindName]
	ts.kindsMu.RUnlock()
	if !ok {
		return protocol.Task{}, fmt.Errorf("%w %q; known kinds: %s", ErrUnknownKind, kindName, ts.kindNames())
	}
	parsed, err := k.parse(params)
	if errors.Is(err, errParamsJSON) {
		return protocol.Task{}, err
	}
	if err != nil {
		return protocol.Task{}, fmt.Errorf("%w: %w", errBadParams, err)
	}
	if name == "" {
		name = kindName
	}
	now := time.Now().UTC()
	t := &task{ts: ts, run: parsed.run, external: k.external, snap: protocol.Task{
		ID: "t" + NewEpoch(), Kind: kindName, Name: name, State: protocol.TaskQueued, Created: now, Total: parsed.total,
	}}
	t.ctx, t.cancel = context.WithCancelCause(context.Background())
	if t.external {
		t.reports = make(chan error, 1)
	}
	if ts.peers != nil {
		// The other servers learn of the task from its record: it starts
		// only once that is stored.
		if err := ts.store.SaveTask(context.WithoutCancel(ctx), t.snap); err != nil {
			return protocol.Task{}, fmt.Errorf("start task: %w", err)
		}
	}

	ts.mu.Lock()
	if ts.closing {
		ts.mu.Unlock()
		if ts.peers != nil {
			ts.deleteRecords([]string{t.snap.ID})
		}
		return protocol.Task{}, ErrTaskShutdown
	}
	ts.tasks[t.snap.ID] = t
	start := t.external || ts.running < ts.cfg.MaxRunning
	if start && !t.external {
		ts.running++
	}
	if !start {
		ts.queue = append(ts.queue, t)
	}
	ts.wg.Add(1)
	t.mu.Lock() // publish the queued state before the task can change
	ts.mu.Unlock()
	if ts.peers != nil {
		t.sendLocked(ctx) // saved above
	} else {
		t.changedLocked(ctx)
	}
	snap := t.snap
	t.mu.Unlock()
	if start {
		go t.runTask()
	}
	return snap, nil
}

func (ts *Tasks) kindNames() string {
	ts.kindsMu.RLock()
	defer ts.kindsMu.RUnlock()
	var names []string
	for n := range ts.kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprint(names)
}

// Get returns the current state of a task of this server (see Find for
// the tasks of every server).
func (ts *Tasks) Get(id string) (protocol.Task, error) {
	t, err := ts.lookup(id)
	if err != nil {
		return protocol.Task{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.view(time.Now()), nil
}

// List returns every task of this server still kept, newest first (see
// ListAll for the tasks of every server).
func (ts *Tasks) List() []protocol.Task {
	ts.mu.Lock()
	gone := ts.forgetLocked(time.Now())
	all := make([]*task, 0, len(ts.tasks))
	for _, t := range ts.tasks {
		if !t.lost.Load() {
			all = append(all, t)
		}
	}
	ts.mu.Unlock()
	ts.deleteRecords(gone)
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
func (ts *Tasks) Find(ctx context.Context, id string) (protocol.Task, error) {
	t, err := ts.Get(id)
	if err == nil || ts.peers == nil || !errors.Is(err, ErrTaskNotFound) {
		return t, err
	}
	t, perr := ts.peers.Get(ctx, id)
	if errors.Is(perr, ErrTaskNotFound) {
		return protocol.Task{}, err // this server's message says how long tasks are kept
	}
	return t, perr
}

// ListAll returns every task still kept by any server that shares the task
// store, newest first.
func (ts *Tasks) ListAll(ctx context.Context) ([]protocol.Task, error) {
	local := ts.List()
	if ts.peers == nil {
		return local, nil
	}
	remote, err := ts.peers.List(ctx)
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
// cancelled. Cancelling a finished task is ErrTaskFinished.
func (ts *Tasks) Cancel(ctx context.Context, id string) (protocol.Task, error) {
	if ts.peers != nil && !ts.has(id) {
		return ts.peers.Cancel(ctx, id)
	}
	return ts.cancelLocal(ctx, id)
}

// cancelLocal cancels a task of this server.
func (ts *Tasks) cancelLocal(ctx context.Context, id string) (protocol.Task, error) {
	t, err := ts.lookup(id)
	if err != nil {
		return protocol.Task{}, err
	}
	t.mu.Lock()
	if t.snap.State.Final() {
		snap := t.snap
		t.mu.Unlock()
		return snap, fmt.Errorf("%w: task %s is %s", ErrTaskFinished, id, snap.State)
	}
	if t.kept {
		t.mu.Unlock()
		return protocol.Task{}, errTaskKept("cancel")
	}
	queued := t.snap.State == protocol.TaskQueued && !t.external
	// Cancelled under t.mu, so that a shutdown does not keep the task (see
	// keep) once this has answered.
	t.cancel(ErrTaskCancelled)
	t.mu.Unlock()
	if queued && ts.dequeue(t) {
		t.finish(ctx, protocol.TaskCancelled, "cancelled before it started")
		ts.ended(t, false)
		ts.wg.Done()
	}
	return ts.Get(id)
}

// Report applies an external task's progress report, on whichever server
// runs it.
func (ts *Tasks) Report(ctx context.Context, id string, rep protocol.ProgressReport) (protocol.Task, error) {
	if ts.peers != nil && !ts.has(id) {
		if err := checkReport(rep); err != nil {
			return protocol.Task{}, err
		}
		return ts.peers.Report(ctx, id, rep)
	}
	return ts.reportLocal(ctx, id, rep)
}

// reportLocal applies a report to a task of this server.
func (ts *Tasks) reportLocal(ctx context.Context, id string, rep protocol.ProgressReport) (protocol.Task, error) {
	t, err := ts.lookup(id)
	if err != nil {
		return protocol.Task{}, err
	}
	if !t.external {
		return protocol.Task{}, protocol.Errorf(http.StatusConflict, protocol.CodeConflict,
			"task %s is of kind %s, which reports its own progress; only external tasks take reports", id, t.snap.Kind)
	}
	if err := t.report(ctx, rep); err != nil {
		return protocol.Task{}, err
	}
	return ts.Get(id)
}

// lookup returns a task of this server. One that another server has
// taken over is not this server's any more.
func (ts *Tasks) lookup(id string) (*task, error) {
	ts.mu.Lock()
	gone := ts.forgetLocked(time.Now())
	t, ok := ts.tasks[id]
	ts.mu.Unlock()
	ts.deleteRecords(gone)
	if !ok || t.lost.Load() {
		return nil, fmt.Errorf("%w: %s (finished tasks are kept for %s, at most %d of them)", ErrTaskNotFound, id, ts.cfg.KeepFor, ts.cfg.KeepFinished)
	}
	return t, nil
}

// has reports whether task id is this server's.
func (ts *Tasks) has(id string) bool {
	_, err := ts.lookup(id)
	return err == nil
}

// dequeue removes t from the queue; false if it was not there (it started).
func (ts *Tasks) dequeue(t *task) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	i := slices.Index(ts.queue, t)
	if i < 0 {
		return false
	}
	ts.queue = slices.Delete(ts.queue, i, i+1)
	return true
}

// ended is called once per task after its final event: it frees the run
// slot, starts the next queued task and forgets old finished ones. A task
// another server took over is forgotten here at once: its record is the
// other server's now.
func (ts *Tasks) ended(t *task, heldSlot bool) {
	ts.mu.Lock()
	var gone []string
	defer func() {
		ts.mu.Unlock()
		ts.deleteRecords(gone)
	}()
	if t.lost.Load() {
		if ts.tasks[t.snap.ID] == t {
			delete(ts.tasks, t.snap.ID)
		}
	} else {
		ts.finished = append(ts.finished, t)
	}
	if heldSlot {
		ts.running--
		for len(ts.queue) > 0 && ts.running < ts.cfg.MaxRunning && !ts.closing {
			next := ts.queue[0]
			ts.queue = ts.queue[1:]
			ts.running++
			go next.runTask()
		}
	}
	gone = ts.forgetLocked(time.Now())
}

// forgetLocked drops finished tasks beyond KeepFinished or older than
// KeepFor, and returns their ids: the caller deletes their records with
// deleteRecords once it has let go of ts.mu.
func (ts *Tasks) forgetLocked(now time.Time) []string {
	drop := 0
	if n := len(ts.finished) - ts.cfg.KeepFinished; n > 0 {
		drop = n
	}
	for drop < len(ts.finished) && now.Sub(ts.finished[drop].finishedAt) > ts.cfg.KeepFor {
		drop++
	}
	var ids []string
	for _, t := range ts.finished[:drop] {
		delete(ts.tasks, t.snap.ID)
		ids = append(ids, t.snap.ID)
	}
	ts.finished = slices.Delete(ts.finished, 0, drop)
	return ids
}

// deleteRecords deletes forgotten tasks' records from the task store.
func (ts *Tasks) deleteRecords(ids []string) {
	if ts.store == nil {
		return
	}
	for _, id := range ids {
		if err := ts.store.DeleteTask(context.Background(), id); err != nil {
			ts.log.Error("forget task", "task", id, "err", err)
		}
	}
}

// Shutdown cancels every live task with the message "server shutting
// down" and waits until their final events are published, or ctx ends.
// An external task is kept instead when the server has a task store of
// its own (its work goes on elsewhere and it is taken back on the next
// start): its latest progress is published and saved, and reports and
// cancels from then on are answered 503, to be sent again in a moment.
func (ts *Tasks) Shutdown(ctx context.Context) error {
	ts.mu.Lock()
	ts.closing = true
	queue := ts.queue
	ts.queue = nil
	live := make([]*task, 0, len(ts.tasks))
	for _, t := range ts.tasks {
		live = append(live, t)
	}
	ts.mu.Unlock()
	for _, t := range queue {
		t.cancel(ErrTaskShutdown)
		t.finish(ctx, protocol.TaskCancelled, ErrTaskShutdown.Error())
		ts.ended(t, false)
		ts.wg.Done()
	}
	for _, t := range live {
		if t.external && ts.keepsExternal() {
			// Kept unless it has ended or is ending; its goroutine then
			// ends without ending it.
			t.keep(ctx)
		}
		t.cancel(ErrTaskShutdown)
	}
	done := make(chan struct{})
	go func() {
		ts.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tasks still running: %w", ctx.Err())
	}
}
