package server

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"
)

// Errors a subscription ends with; transports turn them into close reasons.
var (
	// ErrShutdown: the server is shutting down; the client should reconnect.
	ErrShutdown = errors.New("server shutting down")
	// ErrSlowConsumer: the subscriber fell more than the allowed number of
	// events behind the head of its stream.
	ErrSlowConsumer = errors.New("slow consumer")
	// ErrTooManyStreams: the server holds as many streams as it may.
	ErrTooManyStreams = errors.New("too many streams")
	// errIdle: nothing happened before the caller's timer fired.
	errIdle = errors.New("idle")
)

// Hub fans events out from the stores to subscribers. It keeps in memory
// the streams in use, each with its tail (the most recent events, already
// encoded) and a channel that is closed and replaced whenever the stream
// grows, so one publish wakes every waiting subscriber without the
// publisher touching any of them.
//
// This file is the hub's registry of the streams in memory; stream.go is
// a stream and how it tells its subscribers of new events, batch.go how
// publishes reach the store, follow.go how a stream follows a shared
// store, and tail.go the tail.
type Hub struct {
	store Store
	cfg   hubConfig
	log   *slog.Logger
	done  chan struct{} // closed by Shutdown

	// follower is the store, when other servers append to it too: each
	// stream's tail is then fed by following the store, in its order, and
	// not by this server's own appends.
	follower   Follower
	followCtx  context.Context
	stopFollow context.CancelFunc
	following  sync.WaitGroup

	mu sync.Mutex
	// idleFor is how long a stream nobody uses stays in memory (see
	// acquire); its log stays in the store. sweepEvery is how often, at
	// most, acquire and release look for such streams.
	idleFor, sweepEvery time.Duration
	streams             map[string]*stream
	closed              bool
	idle                int       // streams with no users
	lastSweep           time.Time // when idle streams were last looked for
	// dropped counts the streams dropped so far, by a hash of their names
	// (seeded by seed), for acquire's check: a few slots, so a drop sends
	// back only the acquires that may have been of that stream.
	dropped [64]uint64
	seed    maphash.Seed
}

// hubConfig sets up a Hub. Zero tailSize, maxLag and streamIdle take
// DefaultConfig's TailSize, MaxLag and StreamIdle.
type hubConfig struct {
	batchWindow time.Duration // see Config.BatchWindow
	// perPusher, when set, scales the window to the stream's streaming
	// subscribers: a stream with few of them costs little per event, and
	// its events need not wait (see stream.window).
	perPusher  time.Duration
	tailSize   int           // see Config.TailSize
	maxLag     int           // see Config.MaxLag
	maxStreams int           // see Limits.MaxStreams; 0: no limit
	streamIdle time.Duration // see Config.StreamIdle
	log        *slog.Logger  // nil: discarded
	// onPublish, if set, is told how many events each append added.
	onPublish func(n int)
	// onAppend, if set, is told how long each store append took.
	onAppend func(time.Duration)
}

func newHub(store Store, cfg hubConfig) *Hub {
	d := DefaultConfig()
	orDefault(&cfg.tailSize, d.TailSize)
	orDefault(&cfg.maxLag, d.MaxLag)
	orDefault(&cfg.streamIdle, d.StreamIdle)
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{store: store, cfg: cfg, log: cfg.log, done: make(chan struct{}),
		streams: make(map[string]*stream), seed: maphash.MakeSeed()}
	h.setStreamIdle(cfg.streamIdle)
	h.follower, _ = store.(Follower)
	h.followCtx, h.stopFollow = context.WithCancel(context.Background())
	return h
}

// dropSlot is the slot of Hub.dropped that counts name's drops.
func (h *Hub) dropSlot(name string) int {
	return int(maphash.String(h.seed, name) % uint64(len(h.dropped)))
}

// setStreamIdle sets how long a stream nobody uses stays in memory; idle
// streams are looked for a few times within that.
func (h *Hub) setStreamIdle(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.idleFor, h.sweepEvery = d, min(d/4, 30*time.Second)
}

// shutdown makes every subscription end with ErrShutdown and stops
// following the store.
func (h *Hub) shutdown() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	for _, s := range h.streams {
		s.wakeWaiters()
	}
	h.mu.Unlock()
	h.stopFollow()
	h.following.Wait()
}

// acquire returns the named stream, loading its position from the store
// if it is not in memory, and counts the caller as one of its users until
// the matching release. A stream no one has used for the hub's idleFor is
// dropped from memory (its log stays in the store, and it is loaded again
// when next used), so the streams held, and the limit on them, are those
// in use: when the limit is reached, idle streams make room at once.
// limited says whether the limit applies: to rooms clients open, not to
// what the server itself publishes (task progress, logouts), which must
// never be refused.
func (h *Hub) acquire(ctx context.Context, name string, limited bool) (*stream, error) {
	h.mu.Lock()
	s, ok := h.streams[name]
	if ok {
		h.use(s)
	}
	h.mu.Unlock()
	if ok {
		return s, nil
	}
	slot := h.dropSlot(name)
	for {
		h.mu.Lock()
		dropped := h.dropped[slot]
		h.mu.Unlock()
		info, err := h.store.Info(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("open stream %s: %w", name, err)
		}
		h.mu.Lock()
		if s, ok = h.streams[name]; ok {
			h.use(s)
			h.mu.Unlock()
			return s, nil
		}
		if h.dropped[slot] != dropped {
			// A stream dropped meanwhile may have been this one, with
			// events after what info says: read it again.
			h.mu.Unlock()
			continue
		}
		s, err = h.addLocked(name, info, limited)
		h.mu.Unlock()
		return s, err
	}
}

// addLocked puts a new stream, positioned at info, in memory, with one
// user; when limited, only if that keeps within the hub's limit. h.mu is
// held.
func (h *Hub) addLocked(name string, info StreamInfo, limited bool) (*stream, error) {
	h.sweepLocked(time.Now())
	if h.cfg.maxStreams > 0 && len(h.streams) >= h.cfg.maxStreams {
		h.dropIdleLocked(func(*stream) bool { return len(h.streams) >= h.cfg.maxStreams })
	}
	if limited && h.cfg.maxStreams > 0 && len(h.streams) >= h.cfg.maxStreams {
		return nil, fmt.Errorf("open stream %s: %w (%d)", name, ErrTooManyStreams, h.cfg.maxStreams)
	}
	s := &stream{hub: h, name: name, epoch: info.Epoch, tail: newTail(h.cfg.tailSize, info.Last),
		notify: make(chan struct{}), users: 1}
	s.published.Store(info.Last)
	h.streams[name] = s
	if h.follower != nil && !h.closed {
		ctx, cancel := context.WithCancel(h.followCtx)
		s.stopFollow = cancel
		h.following.Go(func() { s.follow(ctx) })
	}
	return s, nil
}

// sweepLocked drops the streams idle for longer than idleFor, unless it
// did so less than sweepEvery ago. h.mu is held.
func (h *Hub) sweepLocked(now time.Time) {
	if h.idle == 0 || now.Sub(h.lastSweep) < h.sweepEvery {
		return
	}
	h.lastSweep = now
	h.dropIdleLocked(func(s *stream) bool { return now.Sub(s.idleSince) >= h.idleFor })
}

// dropIdleLocked drops from memory the streams with no users for which
// drop returns true. h.mu is held.
func (h *Hub) dropIdleLocked(drop func(*stream) bool) {
	if h.idle == 0 {
		return
	}
	for _, s := range h.streams {
		if s.users > 0 || !drop(s) {
			continue
		}
		h.removeLocked(s)
		h.idle--
		if h.idle == 0 {
			return
		}
	}
}

// held returns how many streams are in memory.
func (h *Hub) held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// use counts one more user of s. h.mu is held.
func (h *Hub) use(s *stream) {
	if s.users == 0 {
		h.idle--
	}
	s.users++
}

// release counts out a user of s that acquire counted in. A stream that
// has never had an event leaves memory with its last user: it holds
// nothing that loading it again would not give back, so reading rooms
// that nobody writes to costs nothing once the readers have gone. Others
// stay until they have been idle for idleFor.
func (h *Hub) release(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if s.users--; s.users == 0 {
		if s.holdsNothing() && h.streams[s.name] == s {
			h.removeLocked(s)
		} else {
			s.idleSince = now
			h.idle++
		}
	}
	h.sweepLocked(now)
}

// removeLocked takes s, which has no users and is not counted as idle,
// out of memory. h.mu is held.
func (h *Hub) removeLocked(s *stream) {
	delete(h.streams, s.name)
	h.dropped[h.dropSlot(s.name)]++
	if s.stopFollow != nil {
		s.stopFollow()
	}
}
