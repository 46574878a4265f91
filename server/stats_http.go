package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushd/push/protocol"
)

// StatsPeers reaches the other servers of a cluster for their stats
// (optional: found on Config.TaskPeers). Without it a server's stats are
// its own.
type StatsPeers interface {
	// Node is this server's name among its peers.
	Node() string
	// GatherStats returns every other live server's latest stats, each
	// with its own figures only (see StatsSource). A server that did not
	// answer in time is there as one NodeStats with Node and Error.
	GatherStats(ctx context.Context) []protocol.Stats
	// GatherSubscribers returns every other live server's subscribers of
	// stream, at most limit each; one that did not answer is named in
	// its list's Missing.
	GatherSubscribers(ctx context.Context, stream string, limit int) []protocol.SubscriberList
	// ServeStats answers the other servers' requests from local until ctx
	// ends.
	ServeStats(ctx context.Context, local StatsSource) error
}

// StatsSource is what a server answers its peers' requests for stats with.
type StatsSource interface {
	// LocalStats returns the server's latest figures, with rates: at once
	// while it samples, else after about a second.
	LocalStats(ctx context.Context) (protocol.Stats, error)
	// LocalSubscribers returns the server's subscribers of stream, the
	// limit furthest behind.
	LocalSubscribers(ctx context.Context, stream string, limit int) (protocol.SubscriberList, error)
}

// StoreProber is a Store that can time what its appends wait for
// (optional; found on the Store): the stats show it once a second.
type StoreProber interface {
	// Probe times one round of it and says what it is ("fsync", "nats
	// round trip").
	Probe(ctx context.Context) (what string, took time.Duration, err error)
}

// statsTimeout bounds a request for stats: a first sample takes about a
// second, and the other nodes of a cluster are asked.
const statsTimeout = 10 * time.Second

// startStats sets up the sampler (stats.go), whose goroutine runs in the
// background while someone looks, until Shutdown (ctx); with peers, the
// answers to other nodes' requests run until then.
func (s *Server) startStats(ctx context.Context) {
	peers, _ := s.cfg.TaskPeers.(StatsPeers)
	s.sampler = newSampler(ctx, s, peers, statsInterval)
	if peers != nil {
		s.bg.Go(func() {
			if err := peers.ServeStats(ctx, s.sampler); err != nil && ctx.Err() == nil {
				s.log.Error("serve stats requests from other servers", "err", err)
			}
		})
	}
}

// newStatsHub returns the hub of the stats stream: a memory store that
// keeps the last protocol.StatsHistory snapshots, each sent at once.
func newStatsHub(cfg Config) *Hub {
	store := NewMemoryStore(MemoryOptions{MaxEvents: protocol.StatsHistory})
	return newHub(store, hubConfig{batchWindow: -1, tailSize: protocol.StatsHistory, log: cfg.Logger})
}

// goBackground runs fn as background work of the server, which Shutdown
// waits for; false once Shutdown has begun.
func (s *Server) goBackground(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.bg.Go(fn)
	return true
}

// stopStats ends the stats stream's subscriptions; after Shutdown's
// background work has stopped, closeStats closes its store.
func (s *Server) stopStats()  { s.statsHub.shutdown() }
func (s *Server) closeStats() { _ = s.statsHub.store.Close() }

func (s *Server) statsRoutes() {
	s.handle("/v1/admin/stats", map[string]handlerFunc{http.MethodGet: s.handleStats})
	s.handle("/v1/admin/stats/events", map[string]handlerFunc{http.MethodGet: s.handleStatsEvents})
	s.handle("/v1/admin/stats/subscribers", map[string]handlerFunc{http.MethodGet: s.handleSubscribers})
}

// adminAccess checks that the request may see the stats: a token with the
// admin right, or on a server without tokens a client on this machine.
func (s *Server) adminAccess(r *http.Request) error {
	id, err := s.authenticate(r)
	switch {
	case err != nil:
		return err
	case id == nil:
		if ip := net.ParseIP(s.clientIP(r)); ip == nil || !ip.IsLoopback() {
			return protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden,
				"this server runs without tokens, so its admin endpoints answer only on loopback; run it with --auth-secret-file and use a token from pushd token --admin")
		}
	case !id.admin:
		return protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "user %s is not an admin; the stats need a token with admin (pushd token --admin)", id.user)
	}
	return nil
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) error {
	if err := s.adminAccess(r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), statsTimeout)
	defer cancel()
	st, err := s.sampler.snapshot(ctx)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// handleStatsEvents serves the stats stream on every transport, like a
// room's: one event a second while anyone watches.
func (s *Server) handleStatsEvents(w http.ResponseWriter, r *http.Request) error {
	if err := s.adminAccess(r); err != nil {
		return err
	}
	s.sampler.ask(false)
	return s.serveEvents(w, r, eventsTarget{query: r.URL.Query(), stream: protocol.StatsStream, hub: s.statsHub})
}

// handleSubscribers lists one stream's subscribers on every node, the
// furthest behind first: ?stream=room/<name> or ?stream=tasks, and
// ?limit= (at most protocol.MaxSubscribers, the default).
func (s *Server) handleSubscribers(w http.ResponseWriter, r *http.Request) error {
	if err := s.adminAccess(r); err != nil {
		return err
	}
	q := r.URL.Query()
	stream := q.Get("stream")
	if room, ok := strings.CutPrefix(stream, protocol.RoomStream("")); ok {
		if err := protocol.ValidateName("room", room); err != nil {
			return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidName, "stream=%q: %v", stream, err)
		}
	} else if stream != protocol.TasksStream {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "stream=%q: give stream=room/<name> or stream=tasks", stream)
	}
	limit := protocol.MaxSubscribers
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > protocol.MaxSubscribers {
			return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "limit=%q: give 1 to %d", raw, protocol.MaxSubscribers)
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), statsTimeout)
	defer cancel()
	list, _ := s.sampler.LocalSubscribers(ctx, stream, limit)
	if p := s.sampler.peers; p != nil {
		list = mergeSubscribers(stream, append([]protocol.SubscriberList{list}, p.GatherSubscribers(ctx, stream, limit)...), limit)
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// LocalSubscribers implements StatsSource.
func (sm *sampler) LocalSubscribers(_ context.Context, stream string, limit int) (protocol.SubscriberList, error) {
	out := protocol.SubscriberList{Stream: stream, Subscribers: []protocol.SubscriberStats{}}
	st := sm.s.hub.lookup(stream)
	if st == nil {
		return out, nil
	}
	out.Head = st.published.Load()
	v := sm.s.tracker.viewOf(st)
	out.Total = len(v.subs)
	out.Subscribers = describe(stream, out.Head, v.subs, sm.node)
	out.Subscribers = out.Subscribers[:min(len(out.Subscribers), limit)]
	return out, nil
}
