package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// List implements tasks.Peers from the view of the records, once
// that view has caught up with the bucket as it is now: a task any server
// had recorded before List was called is in it.
func (ts *Tasks) List(ctx context.Context) ([]protocol.Task, error) {
	if err := ts.st.checkOpen(); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	if err := ts.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]protocol.Task, 0, len(ts.mirror))
	for _, m := range ts.mirror {
		if m.rec.Node != ts.node {
			out = append(out, m.rec.Task)
		}
	}
	return out, nil
}

// catchUp waits until the view reflects the bucket's latest revision, or
// the timeout; past it, a view that has caught up once is used as it is.
func (ts *Tasks) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	status, err := ts.records.Status(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("task records: %w", err))
	}
	last := lastRevision(status)
	for {
		ts.mu.Lock()
		synced, done, moved := ts.synced, ts.synced && ts.applied >= last, ts.moved
		ts.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			if !synced {
				return unavailable(errors.New("task records not loaded yet"))
			}
			ts.log.Debug("task list: records behind the bucket", "want", last)
			return nil
		}
	}
}

// lastRevision is the bucket's latest revision.
func lastRevision(status jetstream.KeyValueStatus) uint64 {
	if s, ok := status.(interface{ StreamInfo() *jetstream.StreamInfo }); ok && s.StreamInfo() != nil {
		return s.StreamInfo().State.LastSeq
	}
	return 0
}

// watch keeps the view of the records until ctx ends or the store is
// closed, watching the bucket again every resyncEvery, and after a
// failure once a backoff (from 100 ms up to 5 s, with jitter) has passed.
func (ts *Tasks) watch(ctx context.Context) {
	defer close(ts.done)
	retry := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second})
	for {
		err := ts.watchOnce(ctx)
		if ctx.Err() != nil || errors.Is(err, server.ErrStoreClosed) {
			return
		}
		wait := time.Duration(0)
		if err != nil {
			wait = retry.Next()
			ts.log.Warn("watching task records failed; retrying", "after", wait, "err", err)
		} else {
			retry.Reset()
		}
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// watchOnce builds the view anew from a watch of the bucket and keeps it
// current, until resyncEvery has passed (nil), ctx ends or the watch
// fails.
func (ts *Tasks) watchOnce(ctx context.Context) error {
	if err := ts.st.checkOpen(); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	status, err := ts.records.Status(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("task records: %w", err)
	}
	// Every revision up to last is in the initial values or gone.
	last := lastRevision(status)
	wctx, cancel := context.WithTimeout(ctx, resyncEvery)
	defer cancel()
	w, err := ts.records.WatchAll(wctx)
	if err != nil {
		return fmt.Errorf("watch task records: %w", err)
	}
	defer func() {
		_ = w.Stop()
		// The watch's delivery blocks on its channel: drain it so that
		// it can end.
		drain := time.NewTimer(ts.st.opts.Timeout)
		defer drain.Stop()
		for {
			select {
			case _, ok := <-w.Updates():
				if !ok {
					return
				}
			case <-drain.C:
				return
			}
		}
	}()
	// Updates go to fresh until it has caught up; then it is the view.
	fresh := make(map[string]mirrored)
	live := false
	for {
		select {
		case <-wctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				if err := ts.st.checkOpen(); err != nil {
					return err
				}
				return errors.New("watch of task records ended")
			}
			if e == nil {
				ts.mu.Lock()
				ts.mirror, ts.synced, ts.applied = fresh, true, max(ts.applied, last)
				ts.signalLocked()
				ts.mu.Unlock()
				live = true
				continue
			}
			if !live {
				ts.apply(fresh, e)
				last = max(last, e.Revision())
				continue
			}
			ts.mu.Lock()
			ts.apply(ts.mirror, e)
			ts.applied = max(ts.applied, e.Revision())
			ts.signalLocked()
			ts.mu.Unlock()
		}
	}
}

// apply puts a change of a record into a view.
func (ts *Tasks) apply(view map[string]mirrored, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		delete(view, e.Key())
		return
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		ts.log.Error("skip undecodable task record", "task", e.Key(), "err", err)
		delete(view, e.Key())
		return
	}
	view[e.Key()] = mirrored{rec: rec, rev: e.Revision()}
}

// signalLocked wakes catchUp's waiters. ts.mu is held.
func (ts *Tasks) signalLocked() {
	close(ts.moved)
	ts.moved = make(chan struct{})
}
