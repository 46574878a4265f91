package client

import (
	"time"

	"github.com/pushd/push/internal/backoff"
)

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

// retryPolicy is the reconnect schedule: full jitter up to
// MinBackoff·2ⁿ⁻¹ (or the server's SSE retry hint, if larger), capped at
// MaxBackoff, and at least the server's Retry-After, still capped.
func (o SubscribeOptions) retryPolicy() backoff.Policy {
	return backoff.Policy{Min: o.MinBackoff, Max: o.MaxBackoff}
}
