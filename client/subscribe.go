package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/push/protocol"
)

// Subscription follows one stream, from the goroutine Subscribe starts.
// It reconnects by itself and resumes from the cursor of the last event
// it handed over, so every event reaches Events once and in order;
// duplicates a resume may bring are dropped (same epoch, seq not above the
// last). A reset event is handed over like any other and moves the cursor:
// it means the events since the last one may be incomplete, and the
// receiver should refetch whatever it derives from the stream.
//
// Its methods are safe for concurrent use. Events and States have one
// receiver each, ideally; Close may be called from any goroutine but
// OnState, any number of times.
type Subscription struct {
	c      *Client
	stream Stream
	opts   SubscribeOptions
	parent context.Context
	cancel context.CancelFunc
	events chan protocol.Event
	states chan StateChange
	done   chan struct{}
	closed atomic.Bool // Close was called

	// Owned by the run goroutine.
	path    string
	pos     protocol.Cursor // where to resume: after the last event handed over
	hasPos  bool
	working Transport     // auto: the transport that worked last
	hint    time.Duration // the server's suggested reconnect delay (SSE retry:)

	mu        sync.Mutex // guards the fields below, read by the methods
	err       error
	cursor    protocol.Cursor
	hasCursor bool
	transport Transport
}

// Subscribe starts following stream and returns at once; connecting,
// reading and reconnecting happen on the subscription's own goroutine
// until ctx is cancelled, Close is called, the server ends the stream (one
// task's stream ends after the task's final event; from the live end, a
// task that has ended already gives that event, then the end), or the
// server refuses the subscription for good (a 4xx answer other than 408
// and 429: a bad room name, a missing task, a token that does not allow
// it; or options that are not valid). Then StateClosed is reported,
// Events and States are closed, and Err says why. A refused token (401,
// or pushd's 403) ends the subscription on the transport that got it: in
// auto mode the others are not tried, as they would be refused alike.
func (c *Client) Subscribe(ctx context.Context, stream Stream, opts SubscribeOptions) *Subscription {
	opts = opts.withDefaults()
	sctx, cancel := context.WithCancel(ctx)
	s := &Subscription{
		c: c, stream: stream, opts: opts, parent: ctx, cancel: cancel,
		events: make(chan protocol.Event, opts.Buffer),
		states: make(chan StateChange, statesBuffer),
		done:   make(chan struct{}),
	}
	go s.run(sctx)
	return s
}

// statesBuffer is the capacity of the States channel.
const statesBuffer = 16

// Events returns the channel of the stream's events, closed when the
// subscription ends. The subscription's goroutine waits while it is full:
// a slow receiver delays nothing but itself, and if the server drops the
// connection meanwhile, the subscription resumes where the receiver is.
func (s *Subscription) Events() <-chan protocol.Event { return s.events }

// States returns a channel of connection state changes, closed after
// StateClosed. The subscription never waits for it: when it is full the
// oldest change is dropped, so the newest are always there. Use
// SubscribeOptions.OnState to see every change in order with the events.
func (s *Subscription) States() <-chan StateChange { return s.states }

// Done is closed when the subscription has ended and its goroutine is
// gone.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended: nil while it runs, after Close
// and after the server ended the stream (a task's stream after its final
// event), the context's error when ctx was cancelled, else the error that
// ended it (errors.As finds a *protocol.Error when the server refused).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the subscription and waits until its goroutine has ended.
// Events not yet received are dropped, and Events is closed.
func (s *Subscription) Close() {
	s.closed.Store(true)
	s.cancel()
	<-s.done
}

// Stream returns the stream followed.
func (s *Subscription) Stream() Stream { return s.stream }

// Cursor returns the cursor of the last event put on Events (false before
// the first), which may still wait in the channel's buffer. A program that
// wants to continue later exactly where its processing stopped keeps the
// cursor of the last event it processed (Event.Cursor) and passes it as
// Since.
func (s *Subscription) Cursor() (protocol.Cursor, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor, s.hasCursor
}

// Transport returns the transport of the current or last connection, ""
// before the first one worked.
func (s *Subscription) Transport() Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// init checks the options and sets the starting position.
func (s *Subscription) init() error {
	if _, err := ParseTransport(string(s.opts.Transport)); err != nil {
		return err
	}
	path, err := s.stream.eventsPath()
	if err != nil {
		return err
	}
	s.path = path
	if s.opts.Since != "" {
		cur, err := protocol.ParseCursor(s.opts.Since)
		if err != nil {
			return fmt.Errorf("subscribe to %s: since: %w", s.stream, err)
		}
		s.pos, s.hasPos = cur, true
	}
	return nil
}

// deliver hands ev to Events unless it is a duplicate, and moves the
// position to it. It fails only when ctx ends while Events is full.
func (s *Subscription) deliver(ctx context.Context, ev protocol.Event) (bool, error) {
	if ev.Type != protocol.TypeReset && s.hasPos && ev.Epoch == s.pos.Epoch && ev.Seq <= s.pos.Seq {
		return false, nil
	}
	// Cursor() covers the event from before it is on the channel, so a
	// receiver that got it never sees an older cursor.
	s.mu.Lock()
	prev, had := s.cursor, s.hasCursor
	s.cursor, s.hasCursor = ev.Cursor(), true
	s.mu.Unlock()
	select {
	case s.events <- ev:
	case <-ctx.Done():
		s.mu.Lock()
		s.cursor, s.hasCursor = prev, had
		s.mu.Unlock()
		return false, ctx.Err()
	}
	s.setPos(ev.Cursor())
	return true, nil
}

// setPos moves the resume position.
func (s *Subscription) setPos(c protocol.Cursor) {
	s.pos, s.hasPos = c, true
}

// session is one connection's bookkeeping, used by its transport on the
// subscription's goroutine.
type session struct {
	s         *Subscription
	opened    bool
	openedAt  time.Time
	delivered int
}

// open records that the server accepted the subscription over t.
func (ss *session) open(t Transport) {
	ss.opened, ss.openedAt = true, time.Now()
	if t != TransportSSE {
		ss.s.hint = 0 // SSE's retry hint is for SSE reconnects
	}
	ss.s.c.log.Debug("subscription connected", "stream", ss.s.stream.String(), "transport", t)
	ss.s.emit(StateChange{State: StateConnected, Transport: t})
}

// deliverJSON decodes one event and delivers it. The watchdog is paused
// while the subscription waits on a full Events channel: a slow receiver
// is not a dead connection.
func (ss *session) deliverJSON(ctx context.Context, data []byte, wd *watchdog) error {
	var ev protocol.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("%w: %v", errBadEvent, err)
	}
	return ss.deliver(ctx, ev, wd)
}

func (ss *session) deliver(ctx context.Context, ev protocol.Event, wd *watchdog) error {
	wd.pause()
	ok, err := ss.s.deliver(ctx, ev)
	wd.kick()
	if ok {
		ss.delivered++
	}
	return err
}
