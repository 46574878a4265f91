package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
)

// Transport is how a subscription receives events.
type Transport string

// The transports. Every stream offers all of them on one URL; the request
// picks one.
const (
	// TransportAuto tries WebSocket, falls back to SSE when the upgrade is
	// refused (a proxy that does not pass it, say), and to long polling
	// when SSE is refused too. It remembers what worked and reconnects
	// with that first.
	TransportAuto Transport = "auto"
	// TransportWebSocket is one WebSocket, one text message per event (or
	// several with SubscribeOptions.Batch).
	TransportWebSocket Transport = "ws"
	// TransportSSE is Server-Sent Events.
	TransportSSE Transport = "sse"
	// TransportLongPoll is HTTP long polling: each request waits up to
	// SubscribeOptions.LongPollWait for events. The first request of each
	// connection asks for no wait, so that StateConnected is reported once
	// the server accepts, not at the stream's next event.
	TransportLongPoll Transport = "longpoll"
	// TransportPoll is short polling: a request that answers at once,
	// every SubscribeOptions.PollInterval.
	TransportPoll Transport = "poll"
)

// ParseTransport parses a transport's name ("auto", "ws", "sse",
// "longpoll", "poll"); "" is auto.
func ParseTransport(s string) (Transport, error) {
	switch t := Transport(s); t {
	case "":
		return TransportAuto, nil
	case TransportAuto, TransportWebSocket, TransportSSE, TransportLongPoll, TransportPoll:
		return t, nil
	}
	return "", fmt.Errorf("unknown transport %q: use auto, ws, sse, longpoll or poll", s)
}

// SubscribeOptions configure a subscription. The zero value follows the
// stream from the live end with TransportAuto and the defaults below.
type SubscribeOptions struct {
	// Transport is the transport to use (default TransportAuto). With any
	// other than auto there is no fallback.
	Transport Transport
	// Since is the cursor to start after: "" for the live end (only
	// events published after Subscribe was called), "0" for the start of
	// the stream, or a cursor ("<epoch>:<seq>") kept from an earlier run.
	Since string
	// User, for rooms, makes that user present in the room while the
	// subscription is connected (?user=).
	User string
	// Batch asks WebSocket servers for the batch subprotocol, in which one
	// message may carry several events; cheaper at high rates.
	Batch bool
	// MinBackoff and MaxBackoff bound the wait before a reconnect
	// (defaults 250 ms and 30 s). The n-th try in a row waits a random
	// time up to MinBackoff·2ⁿ⁻¹, at most MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is the time between short polls (default 1 s).
	PollInterval time.Duration
	// LongPollWait is the wait asked of the server in each long poll
	// (default 25 s; the server may cap it).
	LongPollWait time.Duration
	// IdleTimeout ends a WebSocket or SSE connection on which nothing,
	// not even the server's heartbeat, arrived for that long, and
	// reconnects (default 45 s, three of the server's default heartbeats;
	// negative: never).
	IdleTimeout time.Duration
	// ConnectTimeout bounds each connection's handshake (default 10 s).
	ConnectTimeout time.Duration
	// Buffer is the capacity of the Events channel (default 64).
	Buffer int
	// MaxRetries ends the subscription after that many failed tries in a
	// row (default 0: retry until closed).
	MaxRetries int
	// OnState, if set, is called with every state change, on the
	// subscription's goroutine, in order with the events: a change is
	// reported before any event received after it is sent on Events. It
	// must return quickly and must not call Close (which waits for that
	// goroutine).
	OnState func(StateChange)
}

// Defaults of SubscribeOptions.
const (
	DefaultMinBackoff     = 250 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultPollInterval   = time.Second
	DefaultLongPollWait   = 25 * time.Second
	DefaultIdleTimeout    = 45 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultBuffer         = 64
)

func (o SubscribeOptions) withDefaults() SubscribeOptions {
	if o.Transport == "" {
		o.Transport = TransportAuto
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.LongPollWait <= 0 {
		o.LongPollWait = DefaultLongPollWait
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	return o
}

// ConnState is where a subscription's connection is.
type ConnState int

// Connection states, in the order a subscription usually goes through them.
const (
	// StateConnecting: a transport is being tried (StateChange.Transport).
	StateConnecting ConnState = iota
	// StateConnected: the server accepted the subscription over
	// StateChange.Transport; events flow.
	StateConnected
	// StateReconnecting: the connection failed or dropped (StateChange.Err
	// says why); try StateChange.Attempt comes after StateChange.RetryIn.
	// Nothing is lost: the subscription resumes from its cursor.
	StateReconnecting
	// StateClosed: the subscription ended for good; StateChange.Err is
	// why (nil after Close). It is always the last state reported.
	StateClosed
)

// String names the state: "connecting", "connected", "reconnecting",
// "closed".
func (s ConnState) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// StateChange is a change of a subscription's connection state.
type StateChange struct {
	State ConnState
	// Transport is the transport being tried (connecting), in use
	// (connected), or to be tried next (reconnecting).
	Transport Transport
	// Attempt is the number of the coming try since the last connection
	// that worked, from 1 (reconnecting).
	Attempt int
	// RetryIn is the wait before that try (reconnecting).
	RetryIn time.Duration
	// Err is why the connection dropped (reconnecting) or the
	// subscription ended (closed).
	Err error
}

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
// until ctx is cancelled, Close is called, or the server refuses the
// subscription for good (a 4xx answer other than 408 and 429: a bad room
// name, a missing task, a token that does not allow it; or options that
// are not valid). Then StateClosed is reported, Events and States are
// closed, and Err says why. A refused token (401, or pushd's 403) ends
// the subscription on the transport that got it: in auto mode the others
// are not tried, as they would be refused alike.
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

// Err returns why the subscription ended: nil while it runs and after
// Close, the context's error when ctx was cancelled, else the error that
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

// run is the subscription's goroutine.
func (s *Subscription) run(ctx context.Context) {
	err := s.loop(ctx)
	if ctx.Err() != nil {
		err = s.parent.Err()
		if s.closed.Load() {
			err = nil
		}
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	if err != nil {
		s.c.log.Warn("subscription ended", "stream", s.stream.String(), "err", err)
	}
	s.emit(StateChange{State: StateClosed, Err: err})
	close(s.states)
	close(s.events)
	s.cancel()
	close(s.done)
}

// stableAfter is how long a connection must have lasted, if it delivered
// nothing, for the backoff to start over after it drops.
const stableAfter = 5 * time.Second

// loop connects and reconnects until ctx ends or an error is not
// Retryable.
func (s *Subscription) loop(ctx context.Context) error {
	if err := s.init(); err != nil {
		return err
	}
	b := backoff.New(s.opts.retryPolicy())
	for {
		sess := &session{s: s}
		err := s.connect(ctx, sess)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			err = errors.New("connection ended")
		}
		if !Retryable(err) {
			return fmt.Errorf("subscribe to %s: %w", s.stream, err)
		}
		if sess.delivered > 0 || (sess.opened && time.Since(sess.openedAt) >= stableAfter) {
			b.Reset()
		}
		delay := b.NextAfter(s.hint, RetryAfter(err))
		if s.opts.MaxRetries > 0 && b.Tries() > s.opts.MaxRetries {
			return fmt.Errorf("subscribe to %s: gave up after %d tries: %w", s.stream, s.opts.MaxRetries, err)
		}
		next := s.order()[0]
		s.c.log.Info("subscription reconnecting", "stream", s.stream.String(), "attempt", b.Tries(), "in", delay, "err", err)
		s.emit(StateChange{State: StateReconnecting, Transport: next, Attempt: b.Tries(), RetryIn: delay, Err: err})
		if !backoff.Sleep(ctx, delay) {
			return ctx.Err()
		}
	}
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

// order returns the transports to try, in order.
func (s *Subscription) order() []Transport {
	if s.opts.Transport != TransportAuto {
		return []Transport{s.opts.Transport}
	}
	all := []Transport{TransportWebSocket, TransportSSE, TransportLongPoll}
	for i, t := range all {
		if t == s.working {
			return all[i:]
		}
	}
	return all
}

// connect makes one connection, falling back from transport to transport
// in auto mode while they are refused, and reads from it until it ends.
func (s *Subscription) connect(ctx context.Context, sess *session) error {
	order := s.order()
	s.emit(StateChange{State: StateConnecting, Transport: order[0]})
	if !s.hasPos {
		// Live end: learn where "now" is first, so that a drop before the
		// first event resumes from here instead of skipping ahead.
		cur, err := s.c.Cursor(ctx, s.stream)
		if err != nil {
			return err
		}
		s.pos, s.hasPos = cur, true
	}
	var err error
	for i, t := range order {
		if i > 0 {
			s.emit(StateChange{State: StateConnecting, Transport: t})
		}
		err = s.runTransport(ctx, t, sess)
		if sess.opened {
			if s.opts.Transport == TransportAuto {
				s.working = t
			}
			return err
		}
		var refused *refusedError
		if !errors.As(err, &refused) {
			return err
		}
		if refused.credentials() {
			// Not the transport's fault: every transport is the same URL
			// with the same token, and the next would be refused alike.
			return refused.err
		}
		if i == len(order)-1 || ctx.Err() != nil {
			return err
		}
		s.c.log.Info("transport refused; falling back", "stream", s.stream.String(), "transport", t, "next", order[i+1], "err", err)
	}
	return err
}

// runTransport runs one connection over t.
func (s *Subscription) runTransport(ctx context.Context, t Transport, sess *session) error {
	switch t {
	case TransportWebSocket:
		return s.runWS(ctx, sess)
	case TransportSSE:
		return s.runSSE(ctx, sess)
	case TransportLongPoll:
		return s.runPoll(ctx, sess, TransportLongPoll, s.opts.LongPollWait)
	case TransportPoll:
		return s.runPoll(ctx, sess, TransportPoll, 0)
	}
	return fmt.Errorf("unknown transport %q", t)
}

// query returns the subscribe request's query: since= the position, and
// user= for presence.
func (s *Subscription) query() url.Values {
	q := url.Values{}
	if s.hasPos {
		q.Set("since", s.pos.String())
	}
	if s.opts.User != "" {
		q.Set("user", s.opts.User)
	}
	return q
}

// retryPolicy is the reconnect schedule: full jitter up to
// MinBackoff·2ⁿ⁻¹ (or the server's SSE retry hint, if larger), capped at
// MaxBackoff, and at least the server's Retry-After, still capped.
func (o SubscribeOptions) retryPolicy() backoff.Policy {
	return backoff.Policy{Min: o.MinBackoff, Max: o.MaxBackoff}
}

// emit reports a state change to OnState and States.
func (s *Subscription) emit(sc StateChange) {
	if sc.State == StateConnected {
		s.mu.Lock()
		s.transport = sc.Transport
		s.mu.Unlock()
	}
	if s.opts.OnState != nil {
		s.opts.OnState(sc)
	}
	// Only this goroutine sends, so after taking one out there is room.
	select {
	case s.states <- sc:
	default:
		select {
		case <-s.states:
		default:
		}
		s.states <- sc
	}
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

// watchdog cancels a connection on which nothing arrived for a while.
// kick, pause and set are called from the subscription's goroutine; the
// timer fires on its own.
type watchdog struct {
	t     *time.Timer
	d     time.Duration
	fired atomic.Bool
}

// newWatchdog returns a watchdog that calls cancel after d without a kick.
func newWatchdog(d time.Duration, cancel func()) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel()
	})
	return w
}

// kick restarts the countdown. A nil watchdog does nothing.
func (w *watchdog) kick() {
	if w != nil && w.d > 0 {
		w.t.Reset(w.d)
	}
}

// pause stops the countdown until the next kick.
func (w *watchdog) pause() {
	if w != nil {
		w.t.Stop()
	}
}

// set changes the countdown to d and restarts it; d <= 0 stops it for
// good.
func (w *watchdog) set(d time.Duration) {
	w.d = d
	if d <= 0 {
		w.t.Stop()
		return
	}
	w.t.Reset(d)
}

// err returns why the connection was cancelled, if the watchdog did it.
func (w *watchdog) err(what string) error {
	if w.fired.Load() {
		return fmt.Errorf("%s: %w for %s", what, ErrQuiet, w.d)
	}
	return nil
}

// stop ends the watchdog.
func (w *watchdog) stop() { w.t.Stop() }
