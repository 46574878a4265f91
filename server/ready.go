package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// /readyz says whether a publish would succeed now, judged by the path a
// publish takes: the store's append. It answers 503 while
//
//   - the server is shutting down;
//   - the store says it is not ready (Readier: a NATS store that is not
//     connected, or whose JetStream has no leader);
//   - a probe append to a stream of the server's own fails (NATS
//     unreachable, no quorum for the stream, a bolt file that cannot be
//     written); checks that come while a probe is under way take its
//     outcome;
//   - the last append to any stream failed (or, for a stream not open
//     yet, reading its head failed because the store was unavailable),
//     within the last 10 s, and none to that stream has succeeded since
//     (with several servers on one
//     NATS, each stream has a leader of its own, which the probe's stream
//     may not share: a stream whose leader was lost fails until another
//     is elected).

// readyStream is the stream the readiness probe appends to. No route
// reaches it; the store keeps as much of it as of any stream.
const readyStream = "pushd-readyz"

// failedRecent is how long a failed append counts, unless one to its
// stream succeeds.
const failedRecent = 10 * time.Second

// readiness judges whether publishes would succeed; it watches the
// appends of the store it wraps (see watch).
type readiness struct {
	store Store

	mu     sync.Mutex
	failed map[string]appendFailure // streams whose last append failed

	probeMu  sync.Mutex    // guards probing
	probing  chan struct{} // closed when the probe under way ends; nil when none
	probeErr error         // the outcome of the last probe
}

// appendFailure is a stream's last failed append.
type appendFailure struct {
	at  time.Time
	err error
}

func newReadiness(store Store) *readiness {
	return &readiness{store: store, failed: make(map[string]appendFailure)}
}

// watch returns the store for the hub: store, with every append's outcome
// noted for readiness. A Follower stays one.
func (rd *readiness) watch(store Store) Store {
	w := &watchedStore{Store: store, rd: rd}
	if f, ok := store.(Follower); ok {
		return &watchedFollower{watchedStore: w, Follower: f}
	}
	return w
}

// watchedStore notes the outcome of each append.
type watchedStore struct {
	Store
	rd *readiness
}

// watchedFollower is a watchedStore of a Follower.
type watchedFollower struct {
	*watchedStore
	Follower
}

var (
	_ Store    = (*watchedStore)(nil)
	_ Follower = (*watchedFollower)(nil)
)

func (w *watchedStore) Append(ctx context.Context, stream string, events []protocol.Event) ([]Appended, error) {
	out, err := w.Store.Append(ctx, stream, events)
	w.rd.noteAppend(stream, err)
	return out, err
}

// Info notes a stream the store cannot reach as failing: a publish to it
// opens it with Info first, and fails there, before any append.
func (w *watchedStore) Info(ctx context.Context, stream string) (StreamInfo, error) {
	info, err := w.Store.Info(ctx, stream)
	if errors.Is(err, ErrUnavailable) {
		w.rd.noteAppend(stream, err)
	}
	return info, err
}

// noteAppend records an append's outcome: a failure, or a success that
// clears the stream's last failure.
func (rd *readiness) noteAppend(stream string, err error) {
	if errors.Is(err, ErrStoreClosed) || errors.Is(err, context.Canceled) {
		return // shutting down, or the caller gave up: says nothing of the store
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if err == nil {
		delete(rd.failed, stream)
		return
	}
	rd.failed[stream] = appendFailure{at: time.Now(), err: err}
}

// failing returns the last append failure of a stream within failedRecent
// (the newest), or nil.
func (rd *readiness) failing(now time.Time) (string, error) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	var stream string
	var last appendFailure
	for name, f := range rd.failed {
		switch {
		case now.Sub(f.at) > failedRecent:
			delete(rd.failed, name)
		case f.at.After(last.at):
			stream, last = name, f
		}
	}
	return stream, last.err
}

// probe appends an event to the readiness stream and returns the outcome;
// while one probe is under way, others wait for its outcome (or ctx)
// rather than append too.
func (rd *readiness) probe(ctx context.Context) error {
	rd.probeMu.Lock()
	if wait := rd.probing; wait != nil {
		rd.probeMu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
		rd.probeMu.Lock()
		defer rd.probeMu.Unlock()
		return rd.probeErr
	}
	done := make(chan struct{})
	rd.probing = done
	rd.probeMu.Unlock()

	ev := protocol.Event{Type: protocol.TypeMessage, User: "pushd", Text: "readiness probe", Time: time.Now().UTC()}
	_, err := rd.store.Append(ctx, readyStream, []protocol.Event{ev})

	rd.probeMu.Lock()
	rd.probing, rd.probeErr = nil, err
	rd.probeMu.Unlock()
	close(done)
	return err
}

// handleReady answers 200 while a publish would succeed, 503 with the
// reason otherwise (see the top of this file), so a load balancer sends
// clients elsewhere.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return errShuttingDown
	}
	notReady := func(format string, args ...any) error {
		return protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable, "not ready: "+format, args...).RetryIn(time.Second)
	}
	if rd, ok := s.store.(Readier); ok {
		if err := rd.Ready(r.Context()); err != nil {
			return notReady("%v", err)
		}
	}
	if stream, err := s.ready.failing(time.Now()); err != nil {
		return notReady("publishes to %s fail: %v", stream, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	if err := s.ready.probe(ctx); err != nil {
		return notReady("a probe publish fails: %v", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
