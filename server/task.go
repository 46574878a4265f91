package server

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
	"unicode/utf8"

	"github.com/pushd/push/protocol"
)

// task is one background task. Its mutex orders the task's changes and the
// events that announce them, so watchers never see it go backwards.
type task struct {
	ts       *Tasks
	run      func(ctx context.Context, r *Reporter) error
	external bool
	ctx      context.Context
	cancel   context.CancelCauseFunc
	reports  chan error // external: signalled when a report ended the task
	// lost is set once another server has taken the task over (see
	// ErrTaskTaken): it stops here, announcing nothing more.
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
	rateFrom   time.Time   // start of the rate window, for the ETA
	rateDone   float64     // progress (in percent) at rateFrom
}

// runTask runs the task on its own goroutine until it ends, and turns its
// outcome (return value, panic, cancellation) into the final state.
func (t *task) runTask() {
	defer t.ts.wg.Done()
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
		t.ts.ended(t, heldSlot)
		return
	}
	if err := context.Cause(t.ctx); err != nil {
		t.mu.Unlock()
		t.finishWithCause(err)
		t.ts.ended(t, heldSlot)
		return
	}
	t.startLocked()
	t.mu.Unlock()
	t.await(heldSlot)
}

// startLocked marks the task running, starts an external task's stall
// timer and announces it. An external task taken back after a restart
// (see Tasks.load) may be running already: it keeps its start time, and
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
		t.stall = time.AfterFunc(t.ts.cfg.StallTimeout, t.stalled)
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
	t.ts.ended(t, heldSlot)
}

// call runs the kind's function, turning a panic into an error.
func (t *task) call() (err error) {
	defer func() {
		if v := recover(); v != nil {
			t.ts.log.Error("task panicked", "task", t.snap.ID, "kind", t.snap.Kind, "panic", v, "stack", string(debug.Stack()))
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
	if wait := t.ts.cfg.StallTimeout - time.Since(t.lastReport); wait > 0 {
		// A report came while the timer fired: it counts.
		t.stall.Reset(wait)
		return
	}
	t.cancel(errTaskStalled)
}

// keep keeps an external task for the next start, as a shutdown does when
// the server has a task store of its own: its stall timer stops, its
// latest progress is published (a coalesced event waiting to go out
// goes now) and saved, and from then on it takes no reports or cancels
// here (errTaskKept) and its goroutine ends without ending it. A task that
// has ended, or whose context is cancelled (a cancel, the stall timer), is
// not kept: it ends as it would have.
func (t *task) keep(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kept || t.lost.Load() || t.snap.State.Final() || context.Cause(t.ctx) != nil {
		return
	}
	t.kept = true
	if t.stall != nil {
		t.stall.Stop()
	}
	if t.pending != nil {
		t.sendLocked(ctx)
	}
	t.saveLocked(ctx)
}

// errTaskKept answers a report or a cancel (what) for an external task
// that a shutdown has kept for the next start.
func errTaskKept(what string) error {
	return protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable,
		"the server is restarting; the task goes on once it is back: send the %s again in a moment", what).RetryIn(time.Second)
}

// finishWithCause ends a task whose context was cancelled, saying why.
func (t *task) finishWithCause(cause error) {
	switch {
	case errors.Is(cause, errTaskStalled):
		t.finish(context.Background(), protocol.TaskFailed, fmt.Sprintf("stalled: no progress report for %s", t.ts.cfg.StallTimeout))
	case errors.Is(cause, ErrTaskShutdown):
		t.finish(context.Background(), protocol.TaskCancelled, ErrTaskShutdown.Error())
	case errors.Is(cause, ErrTaskTaken):
		t.finish(context.Background(), protocol.TaskFailed, ErrTaskTaken.Error()) // stays here: see saveLocked
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
	if t.stall != nil {
		t.stall.Stop()
	}
	t.changedLocked(ctx)
	return true
}

// changedLocked records a change of state and announces it at once. t.mu
// is held.
func (t *task) changedLocked(ctx context.Context) {
	if t.saveLocked(ctx) {
		t.sendLocked(ctx)
	}
}

// saveLocked stores the task's record. It reports false once another
// server has taken the task over (ErrTaskTaken): the task is then
// cancelled, and neither saves nor announces anything more, since the
// other server has announced its end. t.mu is held.
func (t *task) saveLocked(ctx context.Context) bool {
	if t.lost.Load() {
		return false
	}
	t.lastSave = time.Now()
	if err := t.ts.save(ctx, t.view(t.lastSave)); errors.Is(err, ErrTaskTaken) {
		t.ts.log.Warn("another server ended this task while this one was out of reach; stopping it here", "task", t.snap.ID)
		t.lost.Store(true)
		if t.pending != nil {
			t.pending.Stop()
			t.pending = nil
		}
		if t.stall != nil {
			t.stall.Stop()
		}
		t.cancel(ErrTaskTaken)
		return false
	}
	return true
}

// publishLocked sends the task's state on the tasks stream: at once when
// force (a state change), else at most once per MinInterval, the latest
// state winning. When the task store is shared the record is saved too,
// as the other servers read progress from it; otherwise the progress is
// saved at most once per progressSaveEvery, for a restart after a crash to
// start from (see Tasks.load). t.mu is held.
func (t *task) publishLocked(ctx context.Context, force bool) {
	if t.lost.Load() {
		return
	}
	now := time.Now()
	if !force {
		if wait := t.ts.cfg.MinInterval - now.Sub(t.lastPub); wait > 0 {
			if t.pending == nil {
				t.pending = time.AfterFunc(wait, t.flushPending)
			}
			return
		}
	}
	switch {
	case t.ts.peers != nil:
		if !t.saveLocked(ctx) {
			return
		}
	case t.ts.store != nil && now.Sub(t.lastSave) >= progressSaveEvery:
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
	if _, err := t.ts.hub.Publish(context.WithoutCancel(ctx), protocol.TasksStream, protocol.Event{Type: protocol.TypeProgress, Task: &view}); err != nil {
		t.ts.log.Error("publish task progress", "task", t.snap.ID, "err", err)
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

// report applies an external task's report: progress, or a final state.
func (t *task) report(ctx context.Context, rep protocol.ProgressReport) error {
	if err := checkReport(rep); err != nil {
		return err
	}
	t.mu.Lock()
	if t.lost.Load() {
		t.mu.Unlock()
		return fmt.Errorf("%w: task %s was ended by another server", ErrTaskFinished, t.snap.ID)
	}
	if t.snap.State.Final() {
		state := t.snap.State
		t.mu.Unlock()
		if rep.State == state {
			return nil // the final report again, sent twice after a lost answer
		}
		return fmt.Errorf("%w: task %s is %s and takes no more reports", ErrTaskFinished, t.snap.ID, state)
	}
	if t.kept {
		t.mu.Unlock()
		return errTaskKept("report")
	}
	if rep.Done != nil && *rep.Done < t.snap.Done {
		done := t.snap.Done
		t.mu.Unlock()
		return protocol.Errorf(http.StatusConflict, protocol.CodeConflict, "done %d is below the %d already reported; progress never goes backwards", *rep.Done, done)
	}
	if rep.Total != nil && *rep.Total < t.snap.Done {
		done := t.snap.Done
		t.mu.Unlock()
		return protocol.Errorf(http.StatusConflict, protocol.CodeConflict, "total %d is below the %d already done; progress never goes backwards", *rep.Total, done)
	}
	if rep.Percent != nil && *rep.Percent < t.snap.Percent {
		pct := t.snap.Percent
		t.mu.Unlock()
		return protocol.Errorf(http.StatusConflict, protocol.CodeConflict, "percent %g is below the %g already reported; progress never goes backwards", *rep.Percent, pct)
	}
	t.progressLocked(rep.Done, rep.Total, rep.Percent, rep.Message)
	t.lastReport = time.Now()
	if t.stall != nil {
		t.stall.Reset(t.ts.cfg.StallTimeout)
	}
	if rep.State == "" {
		t.publishLocked(ctx, false)
		t.mu.Unlock()
		return nil
	}
	msg := ""
	if rep.Message != nil {
		msg = *rep.Message
	}
	if rep.State == protocol.TaskFailed && msg == "" {
		msg = "failed"
	}
	// It has not ended (checked above, under the same lock): this ends it.
	t.finishLocked(ctx, rep.State, msg)
	t.mu.Unlock()
	select {
	case t.reports <- nil: // let the task's goroutine end
	default:
	}
	return nil
}

// checkReport validates a report's values before anything changes.
func checkReport(rep protocol.ProgressReport) error {
	switch {
	case rep.Done != nil && *rep.Done < 0:
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "done must be 0 or more, not %d", *rep.Done)
	case rep.Total != nil && *rep.Total < 0:
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "total must be 0 or more, not %d", *rep.Total)
	case rep.Percent != nil && (*rep.Percent < 0 || *rep.Percent > 100 || math.IsNaN(*rep.Percent)):
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "percent must be from 0 to 100, not %g", *rep.Percent)
	case rep.Message != nil && (len(*rep.Message) > 1024 || !utf8.ValidString(*rep.Message)):
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "message must be valid UTF-8 of at most 1024 bytes")
	}
	switch rep.State {
	case "", protocol.TaskSucceeded, protocol.TaskFailed:
	default:
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "state %q: a report may only end a task with \"succeeded\" or \"failed\" (cancel with POST /v1/tasks/{id}/cancel)", rep.State)
	}
	if rep.Done == nil && rep.Percent == nil && rep.Total == nil && rep.Message == nil && rep.State == "" {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "empty report: give done (of total), percent, message or state")
	}
	return nil
}

// Reporter is how a task's function reports progress. Its methods are safe
// to call from the task's goroutine; progress never goes backwards, and
// reports faster than watchers need are coalesced.
type Reporter struct {
	t *task
}

// SetTotal sets how many units of work the task has.
func (r *Reporter) SetTotal(total int64) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	r.t.progressLocked(nil, &total, nil, nil)
	r.t.publishLocked(r.t.ctx, false)
}

// Progress reports done units of the total, with an optional message.
func (r *Reporter) Progress(done int64, message string) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	var msg *string
	if message != "" {
		msg = &message
	}
	r.t.progressLocked(&done, nil, nil, msg)
	r.t.publishLocked(r.t.ctx, false)
}

// Percent reports progress as a percentage, for work not counted in units.
func (r *Reporter) Percent(percent float64, message string) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	var msg *string
	if message != "" {
		msg = &message
	}
	r.t.progressLocked(nil, nil, &percent, msg)
	r.t.publishLocked(r.t.ctx, false)
}
