package tasks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/push/protocol"
)

// task is one background task. Its mutex orders the task's changes and the
// events that announce them, so watchers never see it go backwards.
type task struct {
	runner   *Runner
	run      func(ctx context.Context, r *Reporter) error
	external bool
	ctx      context.Context
	cancel   context.CancelCauseFunc
	reports  chan error // external: signalled when a report ended the task
	// lost is set once another server has taken the task over (see
	// ErrTaken): it stops here, announcing nothing more.
	lost atomic.Bool

	mu         sync.Mutex
	snap       protocol.Task
	finishedAt time.Time
	lastPub    time.Time   // when the last progress event went out
	lastSave   time.Time   // when the record was last saved with the progress
	lastReport time.Time   // external: when the last report came (or the stall timer started)
	pending    *time.Timer // a coalesced progress event waiting to go out
	stall      *time.Timer // external: fails the task when reports stop
	kept       bool        // external: kept for the next start by a shutdown (see keep)
	watch      *time.Timer // CancelUnwatched: the next check that someone watches
	watchFrom  time.Time   // CancelUnwatched: when the wait for a first watcher began
	rateFrom   time.Time   // start of the rate window, for the ETA
	rateDone   float64     // progress (in percent) at rateFrom

	// countedExternal: the task counts in Runner.external until it ends
	// (see releaseLocked). t.mu, once others can see the task.
	countedExternal bool
}

// runTask runs the task on its own goroutine until it ends, and turns its
// outcome (return value, panic, cancellation) into the final state.
func (t *task) runTask() {
	defer t.runner.wg.Done()
	heldSlot := !t.external
	t.mu.Lock()
	if t.kept {
		// A shutdown kept it for the next start before it ran.
		t.mu.Unlock()
		return
	}
	if t.snap.State.Final() {
		// Ended before it ran: an external task's final report came first.
		t.mu.Unlock()
		t.runner.ended(t, heldSlot)
		return
	}
	if err := context.Cause(t.ctx); err != nil {
		t.mu.Unlock()
		t.finishWithCause(err)
		t.runner.ended(t, heldSlot)
		return
	}
	t.startLocked()
	t.mu.Unlock()
	t.await(heldSlot)
}

// startLocked marks the task running, starts an external task's stall
// timer and announces it. An external task taken back after a restart
// (see Runner.load) may be running already: it keeps its start time, and
// its stall time starts afresh. t.mu is held.
func (t *task) startLocked() {
	now := time.Now().UTC()
	if t.snap.State != protocol.TaskRunning {
		t.snap.State = protocol.TaskRunning
		t.snap.Started = &now
	}
	t.rateFrom, t.rateDone = now, t.snap.Percent
	if t.external {
		t.lastReport = now
		t.stall = time.AfterFunc(t.runner.cfg.StallTimeout, t.stalled)
	}
	t.changedLocked(t.ctx)
}

// await runs the started task's function (an external task waits for its
// final report instead) and turns its outcome into the final state.
func (t *task) await(heldSlot bool) {
	err := t.call()
	t.mu.Lock()
	kept := t.kept
	t.mu.Unlock()
	if kept {
		// Shut down with the server, to be taken back on the next start:
		// it has not ended.
		return
	}
	switch cause := context.Cause(t.ctx); {
	case err == nil && cause == nil:
		t.finish(context.Background(), protocol.TaskSucceeded, "")
	case cause != nil:
		t.finishWithCause(cause)
	default:
		t.finish(context.Background(), protocol.TaskFailed, err.Error())
	}
	t.runner.ended(t, heldSlot)
}

// call runs the kind's function, turning a panic into an error.
func (t *task) call() (err error) {
	defer func() {
		if v := recover(); v != nil {
			t.runner.log.Error("task panicked", "task", t.snap.ID, "kind", t.snap.Kind, "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("task panicked: %v", v)
		}
	}()
	if t.external {
		select {
		case err := <-t.reports:
			return err
		case <-t.ctx.Done():
			return context.Cause(t.ctx)
		}
	}
	return t.run(t.ctx, &Reporter{t: t})
}

// stalled fails an external task that has reported nothing for the stall
// time, unless a shutdown has kept it for the next start. The context is
// cancelled under t.mu, so that keep sees it.
func (t *task) stalled() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kept {
		return
	}
	if wait := t.runner.cfg.StallTimeout - time.Since(t.lastReport); wait > 0 {
		// A report came while the timer fired: it counts.
		t.stall.Reset(wait)
		return
	}
	t.cancel(errStalled)
}

// keep keeps an external task for the next start, as a shutdown does when
// the server has a task store of its own: its stall timer stops, its
// latest progress is published (a coalesced event waiting to go out
// goes now) and saved, and from then on it takes no reports or cancels
// here (errKept) and its goroutine ends without ending it. A task that
// has ended, or whose context is cancelled (a cancel, the stall timer), is
// not kept: it ends as it would have.
func (t *task) keep(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kept || t.lost.Load() || t.snap.State.Final() || context.Cause(t.ctx) != nil {
		return
	}
	t.kept = true
	t.stopTimersLocked()
	if t.pending != nil {
		t.sendLocked(ctx)
	}
	t.saveLocked(ctx)
}

// errKept answers a report or a cancel (what) for an external task
// that a shutdown has kept for the next start: 503, to be sent again.
func errKept(what string) error {
	return protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable,
		"the server is restarting; the task goes on once it is back: send the %s again in a moment", what).RetryIn(time.Second)
}

// finishWithCause ends a task whose context was cancelled, saying why.
func (t *task) finishWithCause(cause error) {
	switch {
	case errors.Is(cause, errStalled):
		t.finish(context.Background(), protocol.TaskFailed, fmt.Sprintf("stalled: no progress report for %s", t.runner.cfg.StallTimeout))
	case errors.Is(cause, ErrShutdown):
		t.finish(context.Background(), protocol.TaskCancelled, ErrShutdown.Error())
	case errors.Is(cause, errUnwatched):
		t.finish(context.Background(), protocol.TaskCancelled, protocol.MessageUnwatched)
	case errors.Is(cause, ErrTaken):
		t.finish(context.Background(), protocol.TaskFailed, ErrTaken.Error()) // stays here: see saveLocked
	default:
		t.finish(context.Background(), protocol.TaskCancelled, "cancelled on request")
	}
}

// finish moves the task to a final state and publishes it at once. It
// reports false if the task had already ended.
func (t *task) finish(ctx context.Context, state protocol.TaskState, message string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.finishLocked(ctx, state, message)
}

// finishLocked is finish with t.mu held.
func (t *task) finishLocked(ctx context.Context, state protocol.TaskState, message string) bool {
	if t.snap.State.Final() {
		return false
	}
	now := time.Now().UTC()
	t.snap.State = state
	if message != "" || state != protocol.TaskSucceeded {
		t.snap.Message = message
	}
	if state == protocol.TaskSucceeded {
		t.snap.Percent = 100
		if t.snap.Total > 0 {
			t.snap.Done = t.snap.Total
		}
	}
	t.snap.Finished = &now
	t.finishedAt = now
	t.releaseLocked()
	t.stopTimersLocked()
	t.changedLocked(ctx)
	return true
}

// releaseLocked lets an external task go from Runner.external, once: it
// has ended, and takes no more of MaxExternal. t.mu is held.
func (t *task) releaseLocked() {
	if t.countedExternal {
		t.countedExternal = false
		t.runner.external.Add(-1)
	}
}

// changedLocked records a change of state and announces it at once. t.mu
// is held.
func (t *task) changedLocked(ctx context.Context) {
	if t.saveLocked(ctx) {
		t.sendLocked(ctx)
	}
}

// saveLocked stores the task's record. It reports false once another
// server has taken the task over (ErrTaken): the task is then
// cancelled, and neither saves nor announces anything more, since the
// other server has announced its end. t.mu is held.
func (t *task) saveLocked(ctx context.Context) bool {
	if t.lost.Load() {
		return false
	}
	t.lastSave = time.Now()
	if err := t.runner.save(ctx, t.view(t.lastSave)); errors.Is(err, ErrTaken) {
		t.runner.log.Warn("another server ended this task while this one was out of reach; stopping it here", "task", t.snap.ID)
		t.lost.Store(true)
		if t.pending != nil {
			t.pending.Stop()
			t.pending = nil
		}
		t.stopTimersLocked()
		t.cancel(ErrTaken)
		return false
	}
	return true
}

// publishLocked sends the task's state on the tasks stream: at once when
// force (a state change), else at most once per MinInterval, the latest
// state winning. When the task store is shared the record is saved too,
// as the other servers read progress from it; otherwise the progress is
// saved at most once per progressSaveEvery, for a restart after a crash to
// start from (see Runner.load). t.mu is held.
func (t *task) publishLocked(ctx context.Context, force bool) {
	if t.lost.Load() {
		return
	}
	now := time.Now()
	if !force {
		if wait := t.runner.cfg.MinInterval - now.Sub(t.lastPub); wait > 0 {
			if t.pending == nil {
				t.pending = time.AfterFunc(wait, t.flushPending)
			}
			return
		}
	}
	switch {
	case t.runner.peers != nil:
		if !t.saveLocked(ctx) {
			return
		}
	case t.runner.store != nil && now.Sub(t.lastSave) >= progressSaveEvery:
		t.saveLocked(ctx)
	}
	t.sendLocked(ctx)
}

// progressSaveEvery is how often, at most, a running task's progress is
// saved to a store of its own (each save is a write to disk).
const progressSaveEvery = time.Second

// sendLocked publishes the task's state on the tasks stream now. t.mu is
// held.
func (t *task) sendLocked(ctx context.Context) {
	if t.pending != nil {
		t.pending.Stop()
		t.pending = nil
	}
	now := time.Now()
	t.lastPub = now
	view := t.view(now)
	if err := t.runner.stream.Publish(context.WithoutCancel(ctx), protocol.Event{Type: protocol.TypeProgress, Task: &view}); err != nil {
		t.runner.log.Error("publish task progress", "task", t.snap.ID, "err", err)
	}
}

// flushPending sends a coalesced progress event.
func (t *task) flushPending() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil || t.snap.State.Final() {
		return
	}
	t.pending = nil
	t.publishLocked(context.Background(), true)
}

// view returns the task as clients see it, with its ETA. t.mu is held.
func (t *task) view(now time.Time) protocol.Task {
	v := t.snap
	v.ETASeconds = nil
	if v.State == protocol.TaskRunning && v.Percent > t.rateDone && v.Percent < 100 {
		elapsed := now.Sub(t.rateFrom).Seconds()
		if elapsed > 0 {
			rate := (v.Percent - t.rateDone) / elapsed // percent per second
			eta := math.Round((100-v.Percent)/rate*10) / 10
			v.ETASeconds = &eta
		}
	}
	return v
}

// progress records done of total and/or percent, never going backwards.
// t.mu is held.
func (t *task) progressLocked(done, total *int64, percent *float64, message *string) {
	if total != nil && *total >= 0 {
		// A total below the work already done would take done backwards.
		t.snap.Total = max(*total, t.snap.Done)
	}
	if done != nil {
		d := *done
		if t.snap.Total > 0 {
			d = min(d, t.snap.Total)
		}
		t.snap.Done = max(t.snap.Done, d)
	}
	p := t.snap.Percent
	if percent != nil {
		p = *percent
	} else if t.snap.Total > 0 {
		p = float64(t.snap.Done) / float64(t.snap.Total) * 100
	}
	p = math.Round(min(max(p, 0), 100)*100) / 100
	if p > t.snap.Percent {
		t.snap.Percent = p
	}
	if message != nil {
		t.snap.Message = *message
	}
}
