package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
)

// SaveTask implements tasks.Store: it writes the record as this
// node's, compare-and-set on the revision this node last wrote, and
// refuses with tasks.ErrTaken once another node has taken the task
// over.
func (ts *Tasks) SaveTask(ctx context.Context, t protocol.Task) error {
	if err := ts.st.checkOpen(); err != nil {
		return fmt.Errorf("save task %s: %w", t.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	data, err := json.Marshal(record{Node: ts.node, Task: t})
	if err != nil {
		return fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	ts.mu.Lock()
	rev, ok := ts.revs[t.ID]
	ts.mu.Unlock()
	if ok {
		rev, err = ts.records.Update(ctx, t.ID, data, rev)
	} else {
		rev, err = ts.records.Create(ctx, t.ID, data)
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		rev, err = ts.overwriteOwn(ctx, t.ID, data)
	}
	if err != nil {
		if errors.Is(err, tasks.ErrTaken) {
			ts.forgetRev(t.ID)
			return err
		}
		return unavailable(fmt.Errorf("save task %s: %w", t.ID, err))
	}
	ts.mu.Lock()
	ts.revs[t.ID] = rev
	ts.mu.Unlock()
	return nil
}

// overwriteOwn writes a record whose revision has moved on since this
// node last wrote it: still this node's (an earlier write landed after
// its call had given up), or taken over by another node.
func (ts *Tasks) overwriteOwn(ctx context.Context, id string, data []byte) (uint64, error) {
	e, err := ts.records.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return 0, fmt.Errorf("save task %s: %w (its record is gone)", id, tasks.ErrTaken)
	}
	if err != nil {
		return 0, err
	}
	var cur record
	if err := json.Unmarshal(e.Value(), &cur); err != nil {
		return 0, fmt.Errorf("decode task record %s: %w", id, err)
	}
	if cur.Node != ts.node {
		return 0, fmt.Errorf("save task %s: %w (node %s has it now)", id, tasks.ErrTaken, cur.Node)
	}
	return ts.records.Update(ctx, id, data, e.Revision())
}

func (ts *Tasks) forgetRev(id string) {
	ts.mu.Lock()
	delete(ts.revs, id)
	ts.mu.Unlock()
}

// DeleteTask implements tasks.Store. A record another node has taken
// over since is left to that node.
func (ts *Tasks) DeleteTask(ctx context.Context, id string) error {
	if err := ts.st.checkOpen(); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	ts.mu.Lock()
	rev, ok := ts.revs[id]
	delete(ts.revs, id)
	ts.mu.Unlock()
	var opts []jetstream.KVDeleteOpt
	if ts.purgeTTL > 0 {
		opts = append(opts, jetstream.PurgeTTL(ts.purgeTTL))
	}
	if ok {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	err := ts.records.Purge(ctx, id, opts...)
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return unavailable(fmt.Errorf("delete task %s: %w", id, err))
	}
	return nil
}

// LoadTasks implements tasks.Store. A node is new with each Tasks, so
// it has no records to take back: those of the server's earlier life
// belong to a node that is gone, and are ended by whichever node finds it
// gone first (this one included).
func (ts *Tasks) LoadTasks(context.Context) ([]protocol.Task, error) {
	return nil, nil
}

// Get implements tasks.Peers with a read of the record.
func (ts *Tasks) Get(ctx context.Context, id string) (protocol.Task, error) {
	m, err := ts.lookup(ctx, id)
	if err != nil {
		return protocol.Task{}, err
	}
	return m.rec.Task, nil
}

// lookup reads the record of a task of another node.
func (ts *Tasks) lookup(ctx context.Context, id string) (mirrored, error) {
	if err := ts.st.checkOpen(); err != nil {
		return mirrored{}, fmt.Errorf("read task %s: %w", id, err)
	}
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	e, err := ts.records.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted), errors.Is(err, jetstream.ErrInvalidKey):
		return mirrored{}, fmt.Errorf("%w: %s", tasks.ErrNotFound, id)
	case err != nil:
		return mirrored{}, unavailable(fmt.Errorf("read task %s: %w", id, err))
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return mirrored{}, fmt.Errorf("decode task record %s: %w", id, err)
	}
	if rec.Node == ts.node {
		// This node's tasks are the server's to show; one it no longer
		// has is forgotten, its record about to go.
		return mirrored{}, fmt.Errorf("%w: %s", tasks.ErrNotFound, id)
	}
	return mirrored{rec: rec, rev: e.Revision()}, nil
}
