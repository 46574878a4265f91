package natsstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
)

// keepAlive renews this node's liveness every third of the TTL and, once
// it has been renewed without a gap for a whole TTL (so every live node
// has had the time to renew its own, also after an outage), ends the
// tasks of nodes whose liveness has lapsed.
func (ts *Tasks) keepAlive(ctx context.Context, local tasks.Local) {
	tick := time.NewTicker(ts.ttl / 3)
	defer tick.Stop()
	defer func() {
		gctx, cancel := context.WithTimeout(context.Background(), ts.st.opts.Timeout)
		defer cancel()
		if ts.st.checkOpen() == nil {
			if err := ts.nodes.Purge(gctx, ts.node); err != nil {
				ts.log.Warn("say this server is gone", "err", err)
			}
		}
	}()
	var since time.Time // the start of the unbroken run of renewals; zero after a failure
	for {
		if err := ts.renew(ctx); err != nil {
			if !since.IsZero() {
				ts.log.Warn("renew this server's liveness for its tasks", "err", err)
			}
			since = time.Time{}
		} else if since.IsZero() {
			since = time.Now()
		}
		if !since.IsZero() && time.Since(since) >= ts.ttl {
			ts.reap(ctx, local)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// renew says this node is alive.
func (ts *Tasks) renew(ctx context.Context) error {
	if err := ts.st.checkOpen(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	data, _ := json.Marshal(map[string]any{"name": ts.st.opts.Name, "time": time.Now().UTC()})
	if _, err := ts.nodes.Put(ctx, ts.node, data); err != nil {
		return unavailable(fmt.Errorf("renew node %s: %w", ts.node, err))
	}
	return nil
}

// reap takes over the records of nodes that are gone: their unfinished
// tasks end as failed, and their finished ones are kept by local from now
// on.
func (ts *Tasks) reap(ctx context.Context, local tasks.Local) {
	ts.mu.Lock()
	unsure := slices.Collect(maps.Values(ts.unsure))
	ts.mu.Unlock()
	for _, c := range unsure {
		ts.confirm(ctx, local, c)
	}
	ts.mu.Lock()
	var others []mirrored
	for _, m := range ts.mirror {
		if m.rec.Node != ts.node {
			others = append(others, m)
		}
	}
	ts.mu.Unlock()
	alive := make(map[string]bool)
	for _, m := range others {
		up, known := alive[m.rec.Node]
		if !known {
			var err error
			if up, err = ts.alive(ctx, m.rec.Node); err != nil {
				ts.log.Warn("check whether a server is alive", "node", m.rec.Node, "err", err)
				return
			}
			alive[m.rec.Node] = up
		}
		if !up {
			ts.takeOver(ctx, local, m)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// alive reports whether a node's liveness is current.
func (ts *Tasks) alive(ctx context.Context, node string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	_, err := ts.nodes.Get(ctx, node)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted), errors.Is(err, jetstream.ErrInvalidKey):
		return false, nil
	}
	return false, err
}

// takeOver makes the record of a vanished node's task this node's, with a
// compare-and-set on the revision seen, so that only one node does it. An
// unfinished task ends as failed and its final event is published.
func (ts *Tasks) takeOver(ctx context.Context, local tasks.Local, m mirrored) {
	c := claim{task: m.rec.Task, from: m.rec.Node, ended: !m.rec.Task.State.Final()}
	if c.ended {
		now := time.Now().UTC()
		c.task.State = protocol.TaskFailed
		c.task.Message = fmt.Sprintf("interrupted: the server running it (node %s) is gone", m.rec.Node)
		c.task.Finished = &now
		c.task.ETASeconds = nil
	}
	var err error
	c.data, err = json.Marshal(record{Node: ts.node, Task: c.task})
	if err != nil {
		ts.log.Error("encode task record", "task", c.task.ID, "err", err)
		return
	}
	uctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	rev, err := ts.records.Update(uctx, c.task.ID, c.data, m.rev)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		// another node was first, or the record changed since it was seen
	case err != nil:
		// The write may have landed, its answer lost: then the record is
		// this node's, and no other node will end the task. Read it back.
		ts.log.Warn("take over the task of a vanished server", "task", c.task.ID, "node", c.from, "err", err)
		ts.mu.Lock()
		ts.unsure[c.task.ID] = c
		ts.mu.Unlock()
		ts.confirm(ctx, local, c)
	default:
		ts.tookOver(ctx, local, c, rev)
	}
}

// claim is a takeover of a vanished node's task record.
type claim struct {
	task  protocol.Task // as this node recorded it
	data  []byte        // the record as written
	from  string        // the vanished node
	ended bool          // the takeover ended the task
}

// confirm settles a takeover whose write went unanswered by reading the
// record back. If it holds what was written, the write landed (the
// record's revision says nothing: a bucket counts revisions across its
// keys), and the takeover goes on. If it holds anything else, the write
// did not land, and the record is reaped again if its node is still
// gone. If it cannot be read, the next reap tries again.
func (ts *Tasks) confirm(ctx context.Context, local tasks.Local, c claim) {
	rctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	e, err := ts.records.Get(rctx, c.task.ID)
	cancel()
	switch {
	case err == nil, errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
	default:
		ts.log.Warn("read back the task of a vanished server", "task", c.task.ID, "node", c.from, "err", err)
		return
	}
	ts.mu.Lock()
	if cur, ok := ts.unsure[c.task.ID]; !ok || !bytes.Equal(cur.data, c.data) {
		ts.mu.Unlock()
		return // settled already
	}
	delete(ts.unsure, c.task.ID)
	ts.mu.Unlock()
	if err == nil && bytes.Equal(e.Value(), c.data) {
		ts.log.Info("the takeover of a task landed unanswered", "task", c.task.ID, "node", c.from)
		ts.tookOver(ctx, local, c, e.Revision())
	}
}

// tookOver finishes a takeover that landed at rev: it publishes the end of
// a task it ended, and keeps the task among local's finished tasks.
func (ts *Tasks) tookOver(ctx context.Context, local tasks.Local, c claim, rev uint64) {
	ts.mu.Lock()
	ts.revs[c.task.ID] = rev
	ts.mu.Unlock()
	if c.ended {
		ts.log.Info("task ended: its server is gone", "task", c.task.ID, "node", c.from)
		actx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
		err := local.Announce(actx, c.task)
		cancel()
		if err != nil {
			ts.log.Error("publish the end of a vanished server's task", "task", c.task.ID, "err", err)
		}
	}
	local.Adopt(c.task)
}
