package natsstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// TaskOptions configure OpenTasks; zero fields take the defaults.
type TaskOptions struct {
	// NodeTTL is how long a server is still taken for alive after it last
	// said so (default 15 s). Each server says so every third of it; once
	// a server's has lapsed, another ends that server's unfinished tasks
	// as failed. The first server to create the buckets sets it for all:
	// the others follow it.
	NodeTTL time.Duration
	// Logger receives what goes wrong in the background (default: the
	// store's logger).
	Logger *slog.Logger
}

// Tasks shares task records and task requests between the servers on one
// Store. Records live in the key-value bucket "<prefix>_tasks", each with
// the node that owns it; requests for a task (cancel, progress report) go
// over NATS request and reply to its owner. It is one server's
// server.TaskStore and server.TaskPeers: give both fields the same Tasks,
// one per server.
//
// Each Tasks is a node with an id of its own, so a server that restarts is
// a new node and takes back none of its earlier tasks. Every node renews
// its entry in the bucket "<prefix>_task_nodes", which expires NodeTTL
// after the last renewal; the unfinished tasks of a node whose entry has
// expired are ended as failed by one of the others, exactly once (a
// compare-and-set on the record), which also publishes their final event
// and keeps the finished tasks of that node from then on. A node that was
// only out of touch for that long finds, when it is back, that it may no
// longer write those records (server.ErrTaskTaken): the task stops there
// without another event.
//
// Close it after the server's Shutdown and before the Store's Close.
type Tasks struct {
	st       *Store
	node     string
	ttl      time.Duration
	log      *slog.Logger
	records  jetstream.KeyValue
	nodes    jetstream.KeyValue
	purgeTTL time.Duration // how long a deleted record's marker stays; 0: until removed by hand

	stop      context.CancelFunc
	done      chan struct{} // closed when the watch of the records has ended
	closeOnce sync.Once

	mu sync.Mutex
	// mirror is every record as the watch of the bucket last saw it, for
	// List and for finding the tasks of vanished nodes.
	mirror  map[string]mirrored
	synced  bool          // the mirror has caught up with the bucket once
	applied uint64        // the bucket revision the mirror reflects
	moved   chan struct{} // closed and replaced when synced or applied changes
	// revs holds the revision this node last wrote of each of its
	// records: saves compare-and-set on it, so a node never overwrites a
	// record another node has taken over.
	revs map[string]uint64
	// unsure holds the takeovers whose write went unanswered and could
	// not be read back yet, by task id.
	unsure map[string]claim
}

var (
	_ server.TaskStore = (*Tasks)(nil)
	_ server.TaskPeers = (*Tasks)(nil)
)

// record is a task record as stored: the task and the node that owns it.
type record struct {
	Node string        `json:"node"`
	Task protocol.Task `json:"task"`
}

// mirrored is a record and its revision in the bucket.
type mirrored struct {
	rec record
	rev uint64
}

// peerRequest is a request to a task's owner.
type peerRequest struct {
	Op     string                   `json:"op"` // opCancel or opReport
	ID     string                   `json:"id"`
	Report *protocol.ProgressReport `json:"report,omitempty"`
}

const (
	opCancel = "cancel"
	opReport = "report"
)

// peerReply is the owner's answer: the task, or why not.
type peerReply struct {
	Task  *protocol.Task        `json:"task,omitempty"`
	Error *protocol.Error `json:"error,omitempty"`
}

const (
	defaultNodeTTL = 15 * time.Second
	// markerTTL is how long the marker of a deleted record stays, so that
	// a watch that resumes after a short outage still sees the deletion.
	markerTTL = 15 * time.Minute
	// resyncEvery is how often the mirror is rebuilt from the bucket, in
	// case a watch missed a deletion whose marker had already gone.
	resyncEvery = 10 * time.Minute
)

// OpenTasks creates the task buckets if they are not there yet and starts
// keeping a view of the records. st must stay open until Close.
func OpenTasks(ctx context.Context, st *Store, opts TaskOptions) (*Tasks, error) {
	if opts.NodeTTL <= 0 {
		opts.NodeTTL = defaultNodeTTL
	}
	if opts.NodeTTL < time.Second {
		return nil, fmt.Errorf("open NATS task store: node TTL %s: give 1s or more", opts.NodeTTL)
	}
	if opts.Logger == nil {
		opts.Logger = st.log
	}
	ts := &Tasks{st: st, node: server.NewEpoch(), ttl: opts.NodeTTL, log: opts.Logger,
		mirror: make(map[string]mirrored), moved: make(chan struct{}), revs: make(map[string]uint64), unsure: make(map[string]claim),
		done: make(chan struct{})}
	if err := st.checkOpen(); err != nil {
		return nil, fmt.Errorf("open NATS task store: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, st.opts.Timeout)
	defer cancel()
	cfg := jetstream.KeyValueConfig{
		Bucket:         st.opts.Prefix + "_tasks",
		Description:    "pushd task records, by task id",
		Storage:        jetstream.FileStorage,
		Replicas:       st.opts.Replicas,
		LimitMarkerTTL: markerTTL,
	}
	var err error
	ts.records, err = bucket(ctx, st.js, cfg)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		// An older NATS server: deleted records leave markers for good.
		cfg.LimitMarkerTTL = 0
		ts.records, err = bucket(ctx, st.js, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open NATS task store: %w", err)
	}
	status, err := ts.records.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("open NATS task store: %w", unavailable(err))
	}
	if status.LimitMarkerTTL() > 0 {
		ts.purgeTTL = markerTTL
	}
	ts.nodes, err = bucket(ctx, st.js, jetstream.KeyValueConfig{
		Bucket:      st.opts.Prefix + "_task_nodes",
		Description: "pushd servers that run tasks, each renewed while it lives",
		TTL:         opts.NodeTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    st.opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open NATS task store: %w", err)
	}
	// The server that created the bucket set the TTL for every node: renew
	// at its pace.
	status, err = ts.nodes.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("open NATS task store: %w", unavailable(err))
	}
	if bt := status.TTL(); bt > 0 && bt != ts.ttl {
		ts.log.Warn("the node TTL is the one the task nodes bucket was made with", "asked", ts.ttl, "ttl", bt)
		ts.ttl = bt
	}
	var wctx context.Context
	wctx, ts.stop = context.WithCancel(context.Background())
	go ts.watch(wctx)
	return ts, nil
}

// bucket creates a key-value bucket, or opens it when another server has
// created it already (with its settings).
func bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		return nil, err
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("bucket %s: %w", cfg.Bucket, err))
	}
	return kv, nil
}

// Node returns this server's node id, as task records name their owner.
func (ts *Tasks) Node() string { return ts.node }

// Close stops keeping the view of the records. It does not close the
// Store.
func (ts *Tasks) Close() error {
	ts.closeOnce.Do(func() {
		ts.stop()
		<-ts.done
	})
	return nil
}

// subject is where a node answers requests for its tasks.
func (ts *Tasks) subject(node string) string {
	return ts.st.opts.Prefix + ".tasks.node." + node
}

// SaveTask implements server.TaskStore: it writes the record as this
// node's, compare-and-set on the revision this node last wrote, and
// refuses with server.ErrTaskTaken once another node has taken the task
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
		if errors.Is(err, server.ErrTaskTaken) {
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
		return 0, fmt.Errorf("save task %s: %w (its record is gone)", id, server.ErrTaskTaken)
	}
	if err != nil {
		return 0, err
	}
	var cur record
	if err := json.Unmarshal(e.Value(), &cur); err != nil {
		return 0, fmt.Errorf("decode task record %s: %w", id, err)
	}
	if cur.Node != ts.node {
		return 0, fmt.Errorf("save task %s: %w (node %s has it now)", id, server.ErrTaskTaken, cur.Node)
	}
	return ts.records.Update(ctx, id, data, e.Revision())
}

func (ts *Tasks) forgetRev(id string) {
	ts.mu.Lock()
	delete(ts.revs, id)
	ts.mu.Unlock()
}

// DeleteTask implements server.TaskStore. A record another node has taken
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

// LoadTasks implements server.TaskStore. A node is new with each Tasks, so
// it has no records to take back: those of the server's earlier life
// belong to a node that is gone, and are ended by whichever node finds it
// gone first (this one included).
func (ts *Tasks) LoadTasks(context.Context) ([]protocol.Task, error) {
	return nil, nil
}

// Get implements server.TaskPeers with a read of the record.
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
		return mirrored{}, fmt.Errorf("%w: %s", server.ErrTaskNotFound, id)
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
		return mirrored{}, fmt.Errorf("%w: %s", server.ErrTaskNotFound, id)
	}
	return mirrored{rec: rec, rev: e.Revision()}, nil
}

// List implements server.TaskPeers from the view of the records, once
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
// closed, watching the bucket again after a failure and every
// resyncEvery.
func (ts *Tasks) watch(ctx context.Context) {
	defer close(ts.done)
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		err := ts.watchOnce(ctx)
		if ctx.Err() != nil || errors.Is(err, server.ErrStoreClosed) {
			return
		}
		wait := time.Duration(0)
		if err != nil {
			ts.log.Warn("watching task records failed; retrying", "after", backoff, "err", err)
			wait, backoff = backoff, min(2*backoff, maxBackoff)
		} else {
			backoff = minBackoff
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
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

// Cancel implements server.TaskPeers: it asks the task's owner.
func (ts *Tasks) Cancel(ctx context.Context, id string) (protocol.Task, error) {
	return ts.forward(ctx, peerRequest{Op: opCancel, ID: id})
}

// Report implements server.TaskPeers: it hands the report to the task's
// owner.
func (ts *Tasks) Report(ctx context.Context, id string, rep protocol.ProgressReport) (protocol.Task, error) {
	return ts.forward(ctx, peerRequest{Op: opReport, ID: id, Report: &rep})
}

// forward sends a request to the node that owns the task and returns its
// answer. A finished task is answered from its record.
func (ts *Tasks) forward(ctx context.Context, req peerRequest) (protocol.Task, error) {
	m, err := ts.lookup(ctx, req.ID)
	if err != nil {
		return protocol.Task{}, err
	}
	if t := m.rec.Task; t.State.Final() {
		if req.Op == opReport {
			return t, fmt.Errorf("%w: task %s is %s and takes no more reports", server.ErrTaskFinished, t.ID, t.State)
		}
		return t, fmt.Errorf("%w: task %s is %s", server.ErrTaskFinished, t.ID, t.State)
	}
	data, err := json.Marshal(req)
	if err != nil {
		return protocol.Task{}, fmt.Errorf("encode task request: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	msg, err := ts.st.nc.RequestWithContext(rctx, ts.subject(m.rec.Node), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return protocol.Task{}, unavailable(ownerSilent{fmt.Errorf("task %s runs on server %s, which does not answer; if it has stopped, its tasks end as failed within %s", req.ID, m.rec.Node, ts.ttl)})
	case err != nil:
		return protocol.Task{}, unavailable(ownerSilent{fmt.Errorf("task %s runs on server %s, which did not answer in time: %w", req.ID, m.rec.Node, err)})
	}
	var reply peerReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return protocol.Task{}, fmt.Errorf("task %s: undecodable answer from server %s: %w", req.ID, m.rec.Node, err)
	}
	switch {
	case reply.Error != nil:
		return protocol.Task{}, reply.Error
	case reply.Task == nil:
		return protocol.Task{}, fmt.Errorf("task %s: empty answer from server %s", req.ID, m.rec.Node)
	}
	return *reply.Task, nil
}

// ownerSilent is an error that says a task's owner does not answer: it is
// server.ErrTaskOwnerSilent, with a text of its own.
type ownerSilent struct{ error }

func (e ownerSilent) Is(target error) bool { return target == server.ErrTaskOwnerSilent }
func (e ownerSilent) Unwrap() error        { return e.error }

// Serve implements server.TaskPeers: it answers the other nodes' requests
// for local's tasks, and renews this node's liveness and ends the tasks of
// vanished nodes (see Tasks), until ctx ends. On its way out it says this
// node is gone, so that the others keep its finished tasks at once.
func (ts *Tasks) Serve(ctx context.Context, local *server.Tasks) error {
	reqs := make(chan *nats.Msg, 256)
	sub, err := ts.st.nc.ChanSubscribe(ts.subject(ts.node), reqs)
	if err != nil {
		return unavailable(fmt.Errorf("serve task requests: %w", err))
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = sub.Unsubscribe() }()
	wg.Go(func() { ts.keepAlive(ctx, local) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-reqs:
			wg.Go(func() { ts.answer(ctx, local, msg) })
		}
	}
}

// answer handles one request from another node.
func (ts *Tasks) answer(ctx context.Context, local *server.Tasks, msg *nats.Msg) {
	var reply peerReply
	var req peerRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		reply.Error = protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "undecodable task request: %v", err)
	} else {
		// The request is answered even if the server is shutting down.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ts.st.opts.Timeout)
		var t protocol.Task
		switch {
		case req.Op == opCancel:
			t, err = local.Local().Cancel(actx, req.ID)
		case req.Op == opReport && req.Report != nil:
			t, err = local.Local().Report(actx, req.ID, *req.Report)
		default:
			err = fmt.Errorf("unknown task request %q", req.Op)
		}
		cancel()
		if err != nil {
			reply.Error = server.TaskPeerErrorOf(err)
			if reply.Error.Status >= http.StatusInternalServerError {
				ts.log.Error("task request from another server", "op", req.Op, "task", req.ID, "err", err)
			}
		} else {
			reply.Task = &t
		}
	}
	data, err := json.Marshal(reply)
	if err == nil {
		err = msg.Respond(data)
	}
	if err != nil {
		ts.log.Warn("answer task request", "op", req.Op, "task", req.ID, "err", err)
	}
}

// keepAlive renews this node's liveness every third of the TTL and, once
// it has been renewed without a gap for a whole TTL (so every live node
// has had the time to renew its own, also after an outage), ends the
// tasks of nodes whose liveness has lapsed.
func (ts *Tasks) keepAlive(ctx context.Context, local *server.Tasks) {
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
func (ts *Tasks) reap(ctx context.Context, local *server.Tasks) {
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
func (ts *Tasks) takeOver(ctx context.Context, local *server.Tasks, m mirrored) {
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
func (ts *Tasks) confirm(ctx context.Context, local *server.Tasks, c claim) {
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
func (ts *Tasks) tookOver(ctx context.Context, local *server.Tasks, c claim, rev uint64) {
	ts.mu.Lock()
	ts.revs[c.task.ID] = rev
	ts.mu.Unlock()
	if c.ended {
		ts.log.Info("task ended: its server is gone", "task", c.task.ID, "node", c.from)
		actx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
		err := local.Local().Announce(actx, c.task)
		cancel()
		if err != nil {
			ts.log.Error("publish the end of a vanished server's task", "task", c.task.ID, "err", err)
		}
	}
	local.Local().Adopt(c.task)
}
