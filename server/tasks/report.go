package tasks

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/pushd/push/protocol"
)

// report applies an external task's report: progress, or a final state.
func (t *task) report(ctx context.Context, rep protocol.ProgressReport) error {
	if err := checkReport(rep); err != nil {
		return err
	}
	t.mu.Lock()
	if t.lost.Load() {
		t.mu.Unlock()
		return fmt.Errorf("%w: task %s was ended by another server", ErrFinished, t.snap.ID)
	}
	if t.snap.State.Final() {
		state := t.snap.State
		t.mu.Unlock()
		if rep.State == state {
			return nil // the final report again, sent twice after a lost answer
		}
		return fmt.Errorf("%w: task %s is %s and takes no more reports", ErrFinished, t.snap.ID, state)
	}
	if t.kept {
		t.mu.Unlock()
		return errKept("report")
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
		t.stall.Reset(t.runner.cfg.StallTimeout)
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
	}
	if rep.Message != nil {
		if err := protocol.ValidateTaskMessage(*rep.Message); err != nil {
			return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "%v", err)
		}
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
	r.report(nil, &total, nil, "")
}

// Progress reports done units of the total, with an optional message.
func (r *Reporter) Progress(done int64, message string) {
	r.report(&done, nil, nil, message)
}

// Percent reports progress as a percentage, for work not counted in units.
func (r *Reporter) Percent(percent float64, message string) {
	r.report(nil, nil, &percent, message)
}

// report records the fields given (nil: unchanged; an empty message
// leaves the message as it was) and publishes, coalesced.
func (r *Reporter) report(done, total *int64, percent *float64, message string) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	var msg *string
	if message != "" {
		msg = &message
	}
	r.t.progressLocked(done, total, percent, msg)
	r.t.publishLocked(r.t.ctx, false)
}
