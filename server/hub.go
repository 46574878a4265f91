package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/push/protocol"
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

// Hub fans events out from the stores to subscribers. It keeps, per stream,
// the most recent events already encoded (the tail) and a channel that is
// closed and replaced whenever the stream grows, so one publish wakes every
// waiting subscriber without the publisher touching any of them.
type Hub struct {
	store  Store
	window time.Duration // see Config.BatchWindow
	// perPusher, when set, scales the window to the stream's streaming
	// subscribers: a stream with few of them costs little per event, and
	// its events need not wait (see stream.window).
	perPusher  time.Duration
	tailSize   int
	maxLag     int
	maxStreams int
	log        *slog.Logger
	done       chan struct{} // closed by Shutdown
	// onPublish, if set, is told how many events each append added.
	onPublish func(n int)

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
	// dropped counts the streams dropped so far, by a hash of their names,
	// for acquire's check: a few slots, so a drop sends back only the
	// acquires that may have been of that stream.
	dropped [64]uint64
}

// dropSlot is the slot of Hub.dropped that counts name's drops.
func dropSlot(name string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return int(h % 64)
}

// setStreamIdle sets how long a stream nobody uses stays in memory; idle
// streams are looked for a few times within that.
func (h *Hub) setStreamIdle(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.idleFor, h.sweepEvery = d, min(d/4, 30*time.Second)
}

func newHub(store Store, window time.Duration, tailSize, maxLag, maxStreams int, log *slog.Logger) *Hub {
	h := &Hub{store: store, window: window, tailSize: tailSize, maxLag: maxLag, maxStreams: maxStreams, log: log,
		done: make(chan struct{}), streams: make(map[string]*stream)}
	h.setStreamIdle(2 * time.Minute)
	h.follower, _ = store.(Follower)
	h.followCtx, h.stopFollow = context.WithCancel(context.Background())
	return h
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

// settle waits, in follow mode, until every stream's tail holds the events
// this server appended, so that its own subscribers get them before a
// shutdown ends their subscriptions (the final events of cancelled tasks).
// It gives up when ctx ends or after a few seconds.
func (h *Hub) settle(ctx context.Context) {
	if h.follower == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	h.mu.Lock()
	streams := make([]*stream, 0, len(h.streams))
	for _, s := range h.streams {
		streams = append(streams, s)
	}
	h.mu.Unlock()
	for _, s := range streams {
		for {
			s.mu.RLock()
			caughtUp, notify := s.published.Load() >= s.appended, s.notify
			s.mu.RUnlock()
			if caughtUp {
				break
			}
			select {
			case <-notify:
			case <-ctx.Done():
				h.log.Warn("shutdown: some events of this server did not reach its subscribers in time; they will read them on reconnecting", "stream", s.name)
				return
			}
		}
	}
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
	slot := dropSlot(name)
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
	if h.maxStreams > 0 && len(h.streams) >= h.maxStreams {
		h.dropIdleLocked(func(*stream) bool { return len(h.streams) >= h.maxStreams })
	}
	if limited && h.maxStreams > 0 && len(h.streams) >= h.maxStreams {
		return nil, fmt.Errorf("open stream %s: %w (%d)", name, ErrTooManyStreams, h.maxStreams)
	}
	s := &stream{hub: h, name: name, epoch: info.Epoch, last: info.Last, ringFirst: info.Last + 1,
		ring: make([]*entry, 8), notify: make(chan struct{}), users: 1}
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
	for name, s := range h.streams {
		if s.users > 0 || !drop(s) {
			continue
		}
		delete(h.streams, name)
		h.idle--
		h.dropped[dropSlot(name)]++
		if s.stopFollow != nil {
			s.stopFollow()
		}
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

// release counts out a user of s that acquire counted in.
func (h *Hub) release(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if s.users--; s.users == 0 {
		s.idleSince = now
		h.idle++
	}
	h.sweepLocked(now)
}

// Publish appends ev to the named stream and returns it as stored. When
// Publish returns nil the event is in the store and every subscriber will
// receive it. Concurrent publishes to one stream are grouped into one store
// append. The limit on rooms (Limits.MaxStreams) is for what clients open:
// Publish is never refused by it.
func (h *Hub) Publish(ctx context.Context, name string, ev protocol.Event) (protocol.Event, error) {
	return h.publish(ctx, name, ev, false)
}

// publish is Publish, within the limit on rooms when limited.
func (h *Hub) publish(ctx context.Context, name string, ev protocol.Event, limited bool) (protocol.Event, error) {
	s, err := h.acquire(ctx, name, limited)
	if err != nil {
		return protocol.Event{}, err
	}
	defer h.release(s)
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	return s.publish(ctx, ev)
}

// stream is one stream's position and encoded tail.
type stream struct {
	hub  *Hub
	name string

	// published is last as last announced, for parking subscribers, which
	// check it under waitMu: an announcement stores it before it takes the
	// waiters, so a subscriber either sees the new events or is woken for
	// them.
	published atomic.Uint64
	waitMu    sync.Mutex
	waiters   map[waker]struct{} // parked subscribers, woken by the next append
	spare     map[waker]struct{} // the other map, swapped in while waking

	mu        sync.RWMutex
	epoch     string
	last      uint64   // newest seq
	ring      []*entry // the tail: seq s at ring[s&(len-1)], len a power of two
	ringFirst uint64   // oldest seq in ring; last+1 when it is empty
	notify    chan struct{}
	open      *batch // publishes waiting for the next store append
	flushing  bool   // a store append is under way
	// announced is when subscribers were last told of new events, and
	// pending whether a telling is due at the end of the batch window.
	announced time.Time
	pending   bool

	pushers atomic.Int64 // streaming (WebSocket and SSE) subscribers

	// users counts the subscriptions and publishes holding the stream, and
	// idleSince is when it last fell to none; both under hub.mu.
	users      int
	idleSince  time.Time
	stopFollow context.CancelFunc // ends following the store, in follow mode

	// epochGen counts the epochs the stream has had in this process; it
	// changes under mu with epoch, and parking subscribers check it.
	epochGen atomic.Uint64
	// appended is the newest seq this server's own appends got, in
	// follow mode; a shutdown waits for the tail to reach it.
	appended uint64
}

// batch is a group of publishes that go to the store in one append.
type batch struct {
	events []protocol.Event
	turn   chan struct{} // closed when the batch's leader may flush it
	done   chan struct{} // closed when out and err are set
	out    []protocol.Event
	err    error
}

// publish adds ev to the open batch. The publisher that opened the batch
// leads it: it waits until no other append is under way, closes the batch
// to newcomers and appends it; the others wait for the result. So appends
// to a stream are serial and in order, and a busy stream gets large
// batches.
func (s *stream) publish(ctx context.Context, ev protocol.Event) (protocol.Event, error) {
	s.mu.Lock()
	b := s.open
	if b == nil {
		b = &batch{turn: make(chan struct{}), done: make(chan struct{})}
		s.open = b
	}
	i := len(b.events)
	b.events = append(b.events, ev)
	if i > 0 {
		// The event is in the batch now and will be appended: wait for the
		// outcome whatever ctx does, so an error always means "not stored".
		// The append runs without cancellation and ends in bounded time.
		s.mu.Unlock()
		<-b.done
		return b.result(i)
	}
	if s.flushing {
		s.mu.Unlock()
		<-b.turn // the append under way hands over when it is done
		s.mu.Lock()
	}
	s.flushing = true
	s.open = nil
	s.mu.Unlock()

	if s.flush(context.WithoutCancel(ctx), b) {
		s.wakeWaiters()
	}

	s.mu.Lock()
	if s.open != nil {
		close(s.open.turn)
	} else {
		s.flushing = false
	}
	s.mu.Unlock()
	return b.result(0)
}

// result is the outcome of the batch's i-th event: stored if the store
// took it, even when it failed on a later one.
func (b *batch) result(i int) (protocol.Event, error) {
	if i < len(b.out) {
		return b.out[i], nil
	}
	if b.err == nil {
		return protocol.Event{}, fmt.Errorf("append: the store returned %d of %d events", len(b.out), len(b.events))
	}
	return protocol.Event{}, b.err
}

// flush appends b to the store and adds the stored events to the tail. It
// returns true when the parked subscribers are to be woken now.
func (s *stream) flush(ctx context.Context, b *batch) bool {
	defer close(b.done)
	out, err := s.hub.store.Append(ctx, s.name, b.events)
	if s.hub.follower != nil {
		// The events reach the tail by following the store, in the order
		// the store gave them among other servers' appends. A shared
		// store may have taken the first events of a batch before failing:
		// those publishers get their events, the others the error.
		if err != nil {
			b.err = fmt.Errorf("append to %s: %w", s.name, err)
		}
		if len(out) > 0 {
			if s.hub.onPublish != nil {
				s.hub.onPublish(len(out))
			}
			s.mu.Lock()
			s.appended = max(s.appended, out[len(out)-1].Seq)
			s.mu.Unlock()
		}
		b.out = out
		return false
	}
	if err != nil {
		b.err = fmt.Errorf("append to %s: %w", s.name, err)
		return false
	}
	entries := make([]*entry, len(out))
	now := time.Now()
	for i := range out {
		if entries[i], err = encodeEntry(&out[i]); err != nil {
			// The events are stored; subscribers will read them from the store.
			s.hub.log.Error("encode event", "stream", s.name, "err", err)
			entries = entries[:i]
			break
		}
		entries[i].published = now
	}
	if s.hub.onPublish != nil {
		s.hub.onPublish(len(out))
	}
	b.out = out
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(out) > 0 && out[0].Epoch != s.epoch {
		// The store lost the stream's history; start the tail anew.
		s.beginEpochLocked(out[0].Epoch, out[0].Seq)
	}
	for _, e := range entries {
		s.push(e)
	}
	if n := len(out); n > 0 {
		s.last = out[n-1].Seq
		if len(entries) < n {
			// Subscribers read the unencodable events from the store instead.
			s.ringFirst = s.last + 1
			clear(s.ring)
		}
	}
	return s.announceLocked()
}

// announceLocked tells the stream's subscribers that it has grown: it
// closes the channel they wait on and returns true, for the caller to
// wake the parked ones once it has let go of s.mu. On a busy stream, one
// told less than the hub's batch window ago, it does so at the end of the
// window instead and returns false: each subscriber then writes at most
// once per window, everything that arrived meanwhile in one system call,
// rather than once per event. A quiet stream's events go out at once.
// s.mu is held.
func (s *stream) announceLocked() bool {
	if s.pending {
		return false
	}
	now := time.Now()
	// Compare before subtracting: the time since the zero "announced" of
	// a new stream saturates, and a negative window minus it overflows.
	if w, since := s.window(), now.Sub(s.announced); w > 0 && since < w {
		s.pending = true
		time.AfterFunc(w-since, s.announceLater)
		return false
	}
	s.announceNowLocked(now)
	return true
}

// announceNowLocked closes the channel subscribers wait on, after storing
// what parked ones check. s.mu is held.
func (s *stream) announceNowLocked(now time.Time) {
	s.announced = now
	s.published.Store(s.last)
	close(s.notify)
	s.notify = make(chan struct{})
}

// window is the least time between two announcements: the hub's batch
// window, or less for a stream with few streaming subscribers, so that the
// writes an announcement costs stay within what the window budgets for.
func (s *stream) window() time.Duration {
	if s.hub.perPusher <= 0 {
		return s.hub.window
	}
	return min(s.hub.window, time.Duration(s.pushers.Load())*s.hub.perPusher)
}

// announceLater is the announcement put off to the end of a batch window.
func (s *stream) announceLater() {
	s.mu.Lock()
	s.pending = false
	wake := s.announceLocked()
	s.mu.Unlock()
	if wake {
		s.wakeWaiters()
	}
}

// waker is a subscriber with no goroutine of its own while it waits: the
// stream calls wake, which must not block, when it has news.
type waker interface{ wake() }

// wakeWaiters wakes and forgets the parked subscribers. It runs after every
// append, outside s.mu.
func (s *stream) wakeWaiters() {
	s.waitMu.Lock()
	waiters := s.waiters
	s.waiters, s.spare = s.spare, nil // each map has one owner at a time
	s.waitMu.Unlock()
	for w := range waiters {
		w.wake()
	}
	clear(waiters)
	s.waitMu.Lock()
	if s.spare == nil {
		s.spare = waiters
	}
	s.waitMu.Unlock()
}

// beginEpochLocked starts the tail anew in a new history (epoch) whose
// first event is seq first: what the tail held is of the old one.
// Subscriptions see epochGen move and reset. s.mu is held.
func (s *stream) beginEpochLocked(epoch string, first uint64) {
	s.epoch = epoch
	s.epochGen.Add(1)
	clear(s.ring)
	s.ringFirst, s.last = first, first-1
}

// push adds e, the event after s.last, to the tail, growing the ring up to
// the hub's tail size and then overwriting the oldest. s.mu is held.
func (s *stream) push(e *entry) {
	n := uint64(len(s.ring))
	if s.ringFirst <= e.seq-1 && e.seq-s.ringFirst == n {
		if int(n) < s.hub.tailSize {
			grown := make([]*entry, 2*n)
			for seq := s.ringFirst; seq < e.seq; seq++ {
				grown[seq&(2*n-1)] = s.ring[seq&(n-1)]
			}
			s.ring, n = grown, 2*n
		} else {
			s.ring[s.ringFirst&(n-1)] = nil
			s.ringFirst++
		}
	}
	if s.ringFirst > e.seq {
		s.ringFirst = e.seq
	}
	s.ring[e.seq&(n-1)] = e
	s.last = e.seq
}

// follow feeds the tail from the store until ctx ends. When following
// fails (the store lost the stream, or cannot be reached for long) it
// starts again from where it stopped, or from the start of a new history
// if the stream's epoch changed meanwhile.
func (s *stream) follow(ctx context.Context) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		after, err := s.resume(ctx)
		if err == nil {
			err = s.hub.follower.Follow(ctx, s.name, after, s.deliver)
		}
		if ctx.Err() != nil || errors.Is(err, ErrStoreClosed) {
			return
		}
		s.mu.RLock()
		moved := s.last != after
		s.mu.RUnlock()
		if moved {
			backoff = minBackoff
		}
		s.hub.log.Warn("following stream failed; retrying", "stream", s.name, "after", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// resume returns the seq to follow the store after: the tail's last, or,
// when the store's history is no longer the tail's, the point before the
// new history's first event, after starting the tail anew in that epoch.
func (s *stream) resume(ctx context.Context) (uint64, error) {
	info, err := s.hub.store.Info(ctx, s.name)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if info.Epoch == s.epoch {
		last := s.last
		s.mu.Unlock()
		return last, nil
	}
	s.hub.log.Warn("stream's history began anew in the store; subscribers get a reset", "stream", s.name, "epoch", info.Epoch, "was", s.epoch)
	s.beginEpochLocked(info.Epoch, info.First)
	s.appended = 0
	// Announce the new epoch at once: waiting subscribers must see it.
	s.pending = false
	s.announceNowLocked(time.Now())
	after := s.last
	s.mu.Unlock()
	s.wakeWaiters()
	return after, nil
}

// deliver adds events that followed the store to the tail, and wakes the
// stream's subscribers. Events already in the tail are skipped; a jump in
// seq or a new epoch starts the tail anew, and subscribers behind it read
// from the store.
func (s *stream) deliver(events []protocol.Event) {
	s.mu.Lock()
	grew := false
	for i := range events {
		ev := &events[i]
		switch {
		case ev.Epoch != s.epoch:
			s.beginEpochLocked(ev.Epoch, ev.Seq)
		case ev.Seq <= s.last:
			continue
		case ev.Seq > s.last+1:
			clear(s.ring)
			s.ringFirst = ev.Seq
		}
		e, err := encodeEntry(ev)
		if err != nil {
			// Subscribers read the unencodable event from the store instead.
			s.hub.log.Error("encode event", "stream", s.name, "err", err)
			clear(s.ring)
			s.last, s.ringFirst = ev.Seq, ev.Seq+1
			grew = true
			continue
		}
		e.published = ev.Time
		s.push(e)
		grew = true
	}
	wake := grew && s.announceLocked()
	s.mu.Unlock()
	if wake {
		s.wakeWaiters()
	}
}
