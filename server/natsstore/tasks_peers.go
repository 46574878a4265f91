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
