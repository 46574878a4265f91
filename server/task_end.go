package server

import (
	"context"
	"fmt"

	"github.com/pushd/push/protocol"
)

// One task's stream (GET /v1/tasks/{id}/events) ends after the task's
// final event: the subscription hands it out, then says the stream is over
// (errTaskFinished), and each transport ends as PROTOCOL.md says.

// taskFinishedMessage is what the end of a one-task stream says to a
// person.
const taskFinishedMessage = "the task has ended and its final event was sent; do not reconnect"

// settleTask checks that the task a one-task subscription follows exists,
// and sees to it that a subscription to a task that has ended ends. It is
// called once the subscription is open, so a task that ends after the
// check ends it in the usual way, with its final event.
//
// For a task that has ended, a subscription from a cursor before the
// task's final event gets the task's events up to it, then the end; one
// from the live end (no cursor: liveEnd) gets the final event, then the
// end; one from a cursor at or after the final event gets the end at once
// (it has seen the final event). When the stream no longer holds the final
// event (retention dropped it, or the server that ran the task could not
// store it), every subscription ends at once.
func (s *Server) settleTask(ctx context.Context, sub *subscription, liveEnd bool) error {
	t, err := s.tasks.Find(ctx, sub.filter)
	if err != nil {
		return taskAnswer(err)
	}
	if !t.State.Final() {
		return nil
	}
	at, found, err := finalEvent(ctx, s.store, sub.filter)
	if err != nil {
		return err
	}
	switch {
	case !found || at.Epoch != sub.epoch:
		sub.finished = true
	case sub.reset != nil || sub.cursor < at.Seq:
		// The task's events up to the final one come first.
	case liveEnd:
		sub.cursor = at.Seq - 1
	default:
		sub.finished = true
	}
	return nil
}

// finalEvent finds the final event of task id in the tasks stream, reading
// the store backwards a page at a time from its newest event; found is
// false when the store does not hold it.
func finalEvent(ctx context.Context, store Store, id string) (at protocol.Cursor, found bool, err error) {
	info, err := store.Info(ctx, protocol.TasksStream)
	if err != nil {
		return at, false, fmt.Errorf("read stream %s: %w", protocol.TasksStream, err)
	}
	for end := info.Last; end >= info.First && end > 0; {
		after := info.First - 1
		if end-after > taskStreamPage {
			after = end - taskStreamPage
		}
		events, got, err := store.Read(ctx, protocol.TasksStream, after, int(end-after))
		if err != nil {
			return at, false, fmt.Errorf("read stream %s: %w", protocol.TasksStream, err)
		}
		if got.Epoch != info.Epoch {
			return at, false, nil // begun anew meanwhile: nothing of before is there
		}
		for i := len(events) - 1; i >= 0; i-- {
			ev := &events[i]
			if ev.Seq <= end && ev.Task != nil && ev.Task.ID == id && ev.Task.State.Final() {
				return ev.Cursor(), true, nil
			}
		}
		end = after
	}
	return at, false, nil
}
