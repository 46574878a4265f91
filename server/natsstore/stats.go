package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// The stats of a cluster: each node answers requests for its own figures on
// a subject of its own, "<prefix>.stats.<node>", and the node a client asks
// asks every other live node (those of the task nodes bucket) at once and
// merges the answers. Asking costs nothing while nobody looks, and a node
// that has stopped has no responders and is left out at once.

var _ server.StatsPeers = (*Tasks)(nil)

// statsRequest asks a node for its figures, or with Stream for its
// subscribers of that stream.
type statsRequest struct {
	Stream string `json:"stream,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// statsReply is a node's answer.
type statsReply struct {
	Stats       *protocol.Stats          `json:"stats,omitempty"`
	Subscribers *protocol.SubscriberList `json:"subscribers,omitempty"`
	Error       string                   `json:"error,omitempty"`
}

// statsSubject is where a node answers requests for its stats.
func (ts *Tasks) statsSubject(node string) string {
	return ts.st.opts.Prefix + ".stats." + node
}

// GatherStats implements server.StatsPeers.
func (ts *Tasks) GatherStats(ctx context.Context) []protocol.Stats {
	var mu sync.Mutex
	var out []protocol.Stats
	ts.askAll(ctx, statsRequest{}, func(node string, r statsReply, err error) {
		if err == nil && r.Stats == nil {
			err = errors.New("an answer without stats")
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			out = append(out, protocol.Stats{Nodes: []protocol.NodeStats{{Node: node, Error: err.Error()}}})
			return
		}
		out = append(out, *r.Stats)
	})
	return out
}

// GatherSubscribers implements server.StatsPeers.
func (ts *Tasks) GatherSubscribers(ctx context.Context, stream string, limit int) []protocol.SubscriberList {
	var mu sync.Mutex
	var out []protocol.SubscriberList
	ts.askAll(ctx, statsRequest{Stream: stream, Limit: limit}, func(node string, r statsReply, err error) {
		if err == nil && r.Subscribers == nil {
			err = errors.New("an answer without subscribers")
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			out = append(out, protocol.SubscriberList{Missing: []string{node + ": " + err.Error()}})
			return
		}
		out = append(out, *r.Subscribers)
	})
	return out
}

// askAll sends req to every other live node at once and calls answer with
// each one's reply, from several goroutines; it returns when all have
// answered or ctx has ended. A node with no responders has stopped, and is
// left out.
func (ts *Tasks) askAll(ctx context.Context, req statsRequest, answer func(node string, r statsReply, err error)) {
	if err := ts.st.checkOpen(); err != nil {
		answer("?", statsReply{}, fmt.Errorf("ask the other servers: %w", err))
		return
	}
	data, err := json.Marshal(req)
	if err != nil {
		answer("?", statsReply{}, fmt.Errorf("encode stats request: %w", err))
		return
	}
	err = ts.eachOtherNode(ctx, func(node string) {
		msg, err := ts.st.nc.RequestWithContext(ctx, ts.statsSubject(node), data)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return
		case err != nil:
			answer(node, statsReply{}, fmt.Errorf("no answer: %w", err))
			return
		}
		var r statsReply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			answer(node, r, fmt.Errorf("undecodable answer: %w", err))
			return
		}
		if r.Error != "" {
			answer(node, r, errors.New(r.Error))
			return
		}
		answer(node, r, nil)
	})
	if err != nil {
		answer("?", statsReply{}, err)
	}
}

// ServeStats implements server.StatsPeers: it answers the other nodes'
// requests for this node's stats from local until ctx ends.
func (ts *Tasks) ServeStats(ctx context.Context, local server.StatsSource) error {
	return ts.serveRequests(ctx, "stats", ts.statsSubject(ts.node), 64,
		func(msg *nats.Msg) { ts.answerStats(ctx, local, msg) }, nil)
}

// answerStats answers one request for this node's stats.
func (ts *Tasks) answerStats(ctx context.Context, local server.StatsSource, msg *nats.Msg) {
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	var req statsRequest
	var reply statsReply
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		reply.Error = fmt.Sprintf("undecodable stats request: %v", err)
	} else if req.Stream != "" {
		list, err := local.LocalSubscribers(ctx, req.Stream, req.Limit)
		if err != nil {
			reply.Error = err.Error()
		} else {
			reply.Subscribers = &list
		}
	} else {
		st, err := local.LocalStats(ctx)
		if err != nil {
			reply.Error = err.Error()
		} else {
			reply.Stats = &st
		}
	}
	data, err := json.Marshal(reply)
	if err == nil {
		err = msg.Respond(data)
	}
	if err != nil && ctx.Err() == nil {
		ts.log.Warn("answer stats request", "err", err)
	}
}

var _ server.StoreProber = (*Store)(nil)

// Probe implements server.StoreProber: it times a round trip to the NATS
// server, which every append makes at least once.
func (s *Store) Probe(ctx context.Context) (string, time.Duration, error) {
	const what = "nats round trip"
	if err := s.checkOpen(); err != nil {
		return what, 0, err
	}
	start := time.Now()
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return what, 0, unavailable(fmt.Errorf("round trip to NATS: %w", err))
	}
	return what, time.Since(start), nil
}
