package server

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/pushd/push/server/tasks"
)

// Config sets up a Server. The zero value is usable: a memory store and the
// defaults of DefaultConfig (see there for the per-client limits).
type Config struct {
	// Store is the event log. Nil means a MemoryStore bounded by History
	// and HistoryAge, which the server closes on Shutdown; a store passed
	// in is the caller's to close.
	Store Store
	// History is how many events the memory store keeps per stream.
	History int
	// HistoryAge is how long the memory store keeps events (zero: no age
	// limit).
	HistoryAge time.Duration
	// DedupeWindow is how long message ids and idempotency keys are
	// remembered: a publish or a task start repeated with its id within
	// it does nothing again and answers what the first did (see
	// Store.Append). The memory store and the task runner take it (it
	// replaces Tasks.DedupeWindow); a store passed in has a window of its
	// own.
	DedupeWindow time.Duration
	// PresenceGrace is how long a user stays present after their last
	// connection closes.
	PresenceGrace time.Duration
	// LongPollWait is the longest a long poll waits, and the wait when a
	// request names none.
	LongPollWait time.Duration
	// Heartbeat is how often an idle SSE stream gets a comment and an idle
	// WebSocket a ping.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a subscriber; a subscriber that
	// takes longer to accept bytes is dropped and resumes.
	WriteTimeout time.Duration
	// ReadTimeout bounds the reading of a request body.
	ReadTimeout time.Duration
	// MaxTextBytes is the longest message text, in bytes.
	MaxTextBytes int
	// MaxBodyBytes is the largest request body, in bytes.
	MaxBodyBytes int64
	// MaxLag is how many events a live subscriber may fall behind before
	// it is disconnected as a slow consumer. It resumes from its cursor
	// and loses nothing.
	MaxLag int
	// BatchWindow is the least time between two announcements of new
	// events on a stream with a thousand or more streaming subscribers
	// (negative: every event at once); smaller streams get a share of it,
	// 20 µs per subscriber. A quiet stream's events go out
	// at once; on a busy one each subscriber gets, at most once per
	// window, everything that arrived meanwhile in one write, which costs
	// far less than a write per event and so keeps latency down under
	// load. It bounds the delay it adds.
	BatchWindow time.Duration
	// TailSize is how many recent events per stream the hub keeps encoded
	// in memory, rounded up to a power of two; older ones are read from
	// the store.
	TailSize int
	// StreamIdle is how long at least a stream (a room, the tasks stream)
	// that no subscriber or publisher uses stays in memory, its tail and,
	// with a shared store, the following of it; it goes at the server's
	// next subscribe, unsubscribe or publish after that. Its log stays in the store, and it is loaded again when next
	// used.
	StreamIdle time.Duration
	// AuthSecret, when set, makes every request need a token signed with
	// it (see Claims and MintToken); empty runs the server open.
	AuthSecret []byte
	// IdentityProvider, when its JWKS is set, makes the server take the
	// tokens an identity provider signs too (and need a token on every
	// request, like AuthSecret).
	IdentityProvider IdentityProvider
	// AllowOrigins lists the browser origins, besides the server's own, whose
	// pages may use the server (WebSocket and CORS): host patterns such as
	// "app.example.com" or "*.example.com", or "https://app.example.com".
	AllowOrigins []string
	// AllowedHosts lists the host names, besides localhost and IP
	// addresses, that the server answers to ("chat.example.com",
	// "*.example.com"; with ":port" to take only that port): a request
	// for another host (its Host header, or from a trusted proxy the host
	// it forwards) is refused with 421, so that no page can reach the
	// server under a name of its own that resolves to the server's
	// address (DNS rebinding).
	AllowedHosts []string
	// TrustedProxies lists the proxies in front of the server: from these
	// addresses the client's address (for the per-address limits and logs)
	// comes from Forwarded or X-Forwarded-For, and the address the page
	// used (for the origin check) from Forwarded or X-Forwarded-Host and
	// -Proto. See ParseTrustedProxies.
	TrustedProxies []netip.Prefix
	// Limits bound what one client may take.
	Limits Limits
	// Tasks sets up the background task runner.
	Tasks tasks.Config
	// TaskStore keeps task records across restarts (nil: in memory only).
	TaskStore tasks.Store
	// Roster shares presence with other servers (nil: this server's own).
	Roster Roster
	// TaskPeers reaches tasks running on other servers that share the
	// TaskStore (nil: every task is this server's). When it is a
	// StatsPeers too (natsstore's is), the stats are every server's,
	// merged.
	TaskPeers tasks.Peers
	// Logger receives the server's logs (nil: discarded).
	Logger *slog.Logger
}

// DefaultConfig returns every default of Config, written once here:
// pushd serve's flags start from it, and New takes a zero field of the
// Config it is given from it. Its per-client limits (Limits.PublishRate,
// PublishBurst, TaskRate, TaskBurst, ConnsPerIP, ConnsPerUser,
// LongPollsPerIP) are the ones pushd serve applies; in a Config passed to
// New, zero in those means no limit.
func DefaultConfig() Config {
	return Config{
		History:       10_000,
		DedupeWindow:  10 * time.Minute,
		PresenceGrace: 5 * time.Second,
		LongPollWait:  25 * time.Second,
		Heartbeat:     15 * time.Second,
		WriteTimeout:  10 * time.Second,
		ReadTimeout:   10 * time.Second,
		MaxTextBytes:  4 << 10,
		MaxBodyBytes:  64 << 10,
		MaxLag:        4096,
		BatchWindow:   20 * time.Millisecond,
		TailSize:      4096,
		StreamIdle:    2 * time.Minute,
		Limits: Limits{
			PublishRate:    20,
			PublishBurst:   40,
			TaskRate:       5,
			TaskBurst:      20,
			ConnsPerIP:     512,
			ConnsPerUser:   64,
			LongPollsPerIP: 256,
			MaxStreams:     100_000,
			WSReadLimit:    4 << 10,
		},
		Tasks: tasks.DefaultConfig(),
	}
}

// withDefaults fills the zero (or negative) fields of c from DefaultConfig,
// but for those where zero has a meaning of its own (HistoryAge, the
// per-client limits; a negative BatchWindow).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	orDefault(&c.History, d.History)
	orDefault(&c.DedupeWindow, d.DedupeWindow)
	orDefault(&c.PresenceGrace, d.PresenceGrace)
	orDefault(&c.LongPollWait, d.LongPollWait)
	orDefault(&c.Heartbeat, d.Heartbeat)
	orDefault(&c.WriteTimeout, d.WriteTimeout)
	orDefault(&c.ReadTimeout, d.ReadTimeout)
	orDefault(&c.MaxTextBytes, d.MaxTextBytes)
	orDefault(&c.MaxBodyBytes, d.MaxBodyBytes)
	orDefault(&c.MaxLag, d.MaxLag)
	if c.BatchWindow == 0 {
		c.BatchWindow = d.BatchWindow
	}
	orDefault(&c.TailSize, d.TailSize)
	orDefault(&c.StreamIdle, d.StreamIdle)
	c.Tasks.DedupeWindow = c.DedupeWindow
	c.Limits = c.Limits.withDefaults(d.Limits)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// orDefault sets *v to d if it is zero or less.
func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
