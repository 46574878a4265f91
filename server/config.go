package server

import (
	"io"
	"log/slog"
	"time"

	"github.com/pushd/push/server/tasks"
)

// Config sets up a Server. The zero value is usable: a memory store and the
// defaults below.
type Config struct {
	// Store is the event log. Nil means a MemoryStore bounded by History
	// and HistoryAge, which the server closes on Shutdown; a store passed
	// in is the caller's to close.
	Store Store
	// History is how many events the memory store keeps per stream
	// (default 10,000).
	History int
	// HistoryAge is how long the memory store keeps events (default: no
	// age limit).
	HistoryAge time.Duration
	// PresenceGrace is how long a user stays present after their last
	// connection closes (default 5 s).
	PresenceGrace time.Duration
	// LongPollWait is the longest a long poll waits, and the wait when a
	// request names none (default 25 s).
	LongPollWait time.Duration
	// Heartbeat is how often an idle SSE stream gets a comment and an idle
	// WebSocket a ping (default 15 s).
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a subscriber (default 10 s); a
	// subscriber that takes longer to accept bytes is dropped and resumes.
	WriteTimeout time.Duration
	// ReadTimeout bounds the reading of a request body (default 10 s).
	ReadTimeout time.Duration
	// MaxTextBytes is the longest message text (default 4 KiB).
	MaxTextBytes int
	// MaxBodyBytes is the largest request body (default 64 KiB).
	MaxBodyBytes int64
	// MaxLag is how many events a live subscriber may fall behind before
	// it is disconnected as a slow consumer (default 4,096). It resumes
	// from its cursor and loses nothing.
	MaxLag int
	// BatchWindow is the least time between two announcements of new
	// events on a stream with a thousand or more streaming subscribers
	// (default 20 ms; negative: every event at once); smaller streams get
	// a share of it, 20 µs per subscriber. A quiet stream's events go out
	// at once; on a busy one each subscriber gets, at most once per
	// window, everything that arrived meanwhile in one write, which costs
	// far less than a write per event and so keeps latency down under
	// load. It bounds the delay it adds.
	BatchWindow time.Duration
	// TailSize is how many recent events per stream the hub keeps encoded
	// in memory (default 4,096); older ones are read from the store.
	TailSize int
	// StreamIdle is how long at least a stream (a room, the tasks stream)
	// that no subscriber or publisher uses stays in memory, its tail and,
	// with a shared store, the following of it (default 2 minutes); it
	// goes at the server's next subscribe, unsubscribe or publish after
	// that. Its log stays in the store, and it is loaded again when next
	// used.
	StreamIdle time.Duration
	// AuthSecret, when set, makes every request need a token signed with
	// it (see Claims and MintToken); empty runs the server open.
	AuthSecret []byte
	// AllowOrigins lists the browser origins, besides the server's own, whose
	// pages may use the server (WebSocket and CORS): host patterns such as
	// "app.example.com" or "*.example.com", or "https://app.example.com".
	AllowOrigins []string
	// Limits bound what one client may take.
	Limits Limits
	// Tasks sets up the background task runner.
	Tasks tasks.Config
	// TaskStore keeps task records across restarts (nil: in memory only).
	TaskStore tasks.Store
	// Roster shares presence with other servers (nil: this server's own).
	Roster Roster
	// TaskPeers reaches tasks running on other servers that share the
	// TaskStore (nil: every task is this server's).
	TaskPeers tasks.Peers
	// Logger receives the server's logs (default: discarded).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.History <= 0 {
		c.History = 10000
	}
	if c.PresenceGrace <= 0 {
		c.PresenceGrace = 5 * time.Second
	}
	if c.LongPollWait <= 0 {
		c.LongPollWait = 25 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.MaxTextBytes <= 0 {
		c.MaxTextBytes = 4 << 10
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.MaxLag <= 0 {
		c.MaxLag = 4096
	}
	if c.BatchWindow == 0 {
		c.BatchWindow = 20 * time.Millisecond
	}
	if c.TailSize <= 0 {
		c.TailSize = 4096
	}
	if c.StreamIdle <= 0 {
		c.StreamIdle = 2 * time.Minute
	}
	// The tail is a ring indexed by seq: round up to a power of two.
	size := 8
	for size < c.TailSize {
		size *= 2
	}
	c.TailSize = size
	c.Limits = c.Limits.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}
