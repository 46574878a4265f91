package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks"
)

// peerRequest is a request to a task's owner.
type peerRequest struct {
	Op     string                   `json:"op"` // opCancel, opReport or opWatched
	ID     string                   `json:"id"`
	Report *protocol.ProgressReport `json:"report,omitempty"`
	Task   *protocol.Task           `json:"task,omitempty"` // opWatched: the task, for its scope
}

const (
	opCancel  = "cancel"
	opReport  = "report"
	opWatched = "watched" // when did the node last have a watcher of the task (any node may be asked)
)

// peerReply is the owner's answer: the task, or why not; or a node's
// answer to opWatched.
type peerReply struct {
	Task    *protocol.Task  `json:"task,omitempty"`
	Error   *protocol.Error `json:"error,omitempty"`
	Watched *time.Time      `json:"watched,omitempty"`
}

// Cancel implements tasks.Peers: it asks the task's owner.
func (ts *Tasks) Cancel(ctx context.Context, id string) (protocol.Task, error) {
	return ts.forward(ctx, peerRequest{Op: opCancel, ID: id})
}

// Report implements tasks.Peers: it hands the report to the task's
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
			return t, fmt.Errorf("%w: task %s is %s and takes no more reports", tasks.ErrFinished, t.ID, t.State)
		}
		return t, fmt.Errorf("%w: task %s is %s", tasks.ErrFinished, t.ID, t.State)
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
// tasks.ErrOwnerSilent, with a text of its own.
type ownerSilent struct{ error }

func (e ownerSilent) Is(target error) bool { return target == tasks.ErrOwnerSilent }
func (e ownerSilent) Unwrap() error        { return e.error }

// Serve implements tasks.Peers: it answers the other nodes' requests
// for local's tasks, and renews this node's liveness and ends the tasks of
// vanished nodes (see Tasks), until ctx ends. On its way out it says this
// node is gone, so that the others keep its finished tasks at once.
func (ts *Tasks) Serve(ctx context.Context, local tasks.Local) error {
	return ts.serveRequests(ctx, "task", ts.subject(ts.node), 256,
		func(msg *nats.Msg) { ts.answer(ctx, local, msg) },
		func() { ts.keepAlive(ctx, local) })
}

// eachOtherNode calls ask for every other live node (those of the task
// nodes bucket), each on a goroutine of its own, and returns once all
// have returned; with no nodes in the bucket there are none to ask. Its
// error is one listing the nodes.
func (ts *Tasks) eachOtherNode(ctx context.Context, ask func(node string)) error {
	nodes, err := ts.nodes.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list the servers: %w", err)
	}
	var wg sync.WaitGroup
	for _, node := range nodes {
		if node != ts.node {
			wg.Go(func() { ask(node) })
		}
	}
	wg.Wait()
	return nil
}

// serveRequests answers the requests (what they are for, in errors) that
// come on subject, each on a goroutine of its own, with up to buffer
// waiting, until ctx ends; alongside, if not nil, runs on a goroutine of
// its own once the subscription is made. On its way out it unsubscribes
// and waits for the answers under way and for alongside.
func (ts *Tasks) serveRequests(ctx context.Context, what, subject string, buffer int, answer func(*nats.Msg), alongside func()) error {
	reqs := make(chan *nats.Msg, buffer)
	sub, err := ts.st.nc.ChanSubscribe(subject, reqs)
	if err != nil {
		return unavailable(fmt.Errorf("serve %s requests: %w", what, err))
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = sub.Unsubscribe() }()
	if alongside != nil {
		wg.Go(alongside)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-reqs:
			wg.Go(func() { answer(msg) })
		}
	}
}

// answer handles one request from another node.
func (ts *Tasks) answer(ctx context.Context, local tasks.Local, msg *nats.Msg) {
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
			t, err = local.Cancel(actx, req.ID)
		case req.Op == opReport && req.Report != nil:
			t, err = local.Report(actx, req.ID, *req.Report)
		case req.Op == opWatched && req.Task != nil:
			at := local.LastWatched(*req.Task)
			reply.Watched = &at
		default:
			err = fmt.Errorf("unknown task request %q", req.Op)
		}
		cancel()
		if err != nil {
			reply.Error = server.TaskPeerErrorOf(err)
			if reply.Error.Status >= http.StatusInternalServerError {
				ts.log.Error("task request from another server", "op", req.Op, "task", req.ID, "err", err)
			}
		} else if reply.Watched == nil {
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

// LastWatched implements tasks.Peers: it asks every other live node at
// once, over the subject each serves its task requests on, when it last
// had a watcher of t, and returns the latest answer. A node that has
// stopped serving (no responders) has no watchers left; one that does not
// answer in time is an error, so the task is not taken for unwatched.
//
// Asking, rather than each node keeping its watchers in a bucket, costs
// nothing while no task has cancel_unwatched, gives exact times (no
// renewal period to allow for), and asks only when the owner has had no
// watcher of its own for the whole time.
func (ts *Tasks) LastWatched(ctx context.Context, t protocol.Task) (time.Time, error) {
	if err := ts.st.checkOpen(); err != nil {
		return time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	data, err := json.Marshal(peerRequest{Op: opWatched, ID: t.ID, Task: &t})
	if err != nil {
		return time.Time{}, fmt.Errorf("encode task request: %w", err)
	}
	var (
		mu   sync.Mutex
		last time.Time
		errs []error
	)
	err = ts.eachOtherNode(ctx, func(node string) {
		at, err := ts.askWatched(ctx, node, data)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		} else if at.After(last) {
			last = at
		}
	})
	if err != nil {
		return time.Time{}, unavailable(err)
	}
	return last, errors.Join(errs...)
}

// askWatched asks one node when it last had a watcher of a task.
func (ts *Tasks) askWatched(ctx context.Context, node string, data []byte) (time.Time, error) {
	msg, err := ts.st.nc.RequestWithContext(ctx, ts.subject(node), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, unavailable(fmt.Errorf("ask server %s for the watchers of a task: %w", node, err))
	}
	var reply peerReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return time.Time{}, fmt.Errorf("undecodable answer from server %s: %w", node, err)
	}
	switch {
	case reply.Error != nil:
		return time.Time{}, reply.Error
	case reply.Watched == nil:
		return time.Time{}, fmt.Errorf("server %s did not say when the task was watched", node)
	}
	return *reply.Watched, nil
}
