package natsstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks"
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
// tasks.Store and tasks.Peers: give both fields (server.Config's
// TaskStore and TaskPeers) the same Tasks, one per server.
//
// Each Tasks is a node with an id of its own, so a server that restarts is
// a new node and takes back none of its earlier tasks. Every node renews
// its entry in the bucket "<prefix>_task_nodes", which expires NodeTTL
// after the last renewal; the unfinished tasks of a node whose entry has
// expired are ended as failed by one of the others, exactly once (a
// compare-and-set on the record), which also publishes their final event
// and keeps the finished tasks of that node from then on. A node that was
// only out of touch for that long finds, when it is back, that it may no
// longer write those records (tasks.ErrTaken): the task stops there
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

	keysMu sync.Mutex
	keys   jetstream.KeyValue // idempotency keys, opened on first use (see keyBucket)
}

var (
	_ tasks.Store = (*Tasks)(nil)
	_ tasks.Peers = (*Tasks)(nil)
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
