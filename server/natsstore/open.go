package natsstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/server"
)

// Options configure a Store. URL is required; Open takes the zero fields
// of the others from DefaultOptions.
type Options struct {
	// URL is the NATS server, or a comma-separated list of a cluster's.
	URL string
	// CredsFile is a NATS credentials file (JWT and seed), if the server
	// needs one.
	CredsFile string
	// Prefix names everything pushd creates in NATS, so several pushd
	// clusters can share one NATS.
	Prefix string
	// Replicas is how many copies JetStream keeps of each stream (3 on a
	// three-node NATS cluster).
	Replicas int
	// MaxEvents and MaxAge bound each stream's history (0: no bound).
	MaxEvents int
	MaxAge    time.Duration
	// DedupeWindow is how long JetStream remembers the IDs of stored
	// events (0: server.DefaultConfig's DedupeWindow); at most MaxAge,
	// when that is set.
	DedupeWindow time.Duration
	// Timeout bounds each call to NATS. A call that takes longer fails
	// with server.ErrUnavailable.
	Timeout time.Duration
	// Name identifies this server's connection in NATS monitoring.
	Name string
	// Logger receives connection changes (default: discarded).
	Logger *slog.Logger
}

// DefaultOptions returns the defaults of Options, written once here: Open
// takes a zero field from it, and pushd serve's flags start from it.
func DefaultOptions() Options {
	return Options{Prefix: "pushd", Replicas: 1, Timeout: 5 * time.Second, Name: "pushd"}
}

// ValidatePrefix checks a prefix for Options.Prefix: it names streams,
// key-value buckets and subjects, so it is 1 to 32 letters, digits, - and _.
func ValidatePrefix(prefix string) error {
	ok := prefix != "" && len(prefix) <= 32
	for i := 0; ok && i < len(prefix); i++ {
		c := prefix[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if !ok {
		return fmt.Errorf("prefix %q: use 1 to 32 letters, digits, - and _", prefix)
	}
	return nil
}

// Open connects to NATS and checks that JetStream is there. After Open the
// connection reconnects by itself for as long as the Store is open.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.URL == "" {
		return nil, errors.New("open NATS store: no URL")
	}
	d := DefaultOptions()
	opts.Prefix = cmp.Or(opts.Prefix, d.Prefix)
	if err := ValidatePrefix(opts.Prefix); err != nil {
		return nil, fmt.Errorf("open NATS store: %w", err)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = d.Replicas
	}
	if opts.Timeout <= 0 {
		opts.Timeout = d.Timeout
	}
	opts.Name = cmp.Or(opts.Name, d.Name)
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = server.DefaultConfig().DedupeWindow
	}
	if opts.MaxAge > 0 {
		opts.DedupeWindow = min(opts.DedupeWindow, opts.MaxAge) // JetStream's rule
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	closed := make(chan struct{})
	natsOpts := []nats.Option{
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// A NATS server that vanished without closing the connection is
		// noticed within seconds, and another in the cluster is used.
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		// While disconnected, publishes fail at once rather than wait in a
		// buffer: one that was refused with 503 must never land later.
		nats.ReconnectBufSize(-1),
		nats.Timeout(opts.Timeout),
		// The connection's callbacks run on a goroutine of its own, after
		// the fact: one for a disconnect may run once Close has closed the
		// connection, and Close itself calls it. A closed connection is
		// not lost, and is not reconnecting.
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if !nc.IsClosed() {
				log.Warn("lost NATS connection; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection back", "url", nc.ConnectedUrlRedacted())
		}),
		// The last callback of a connection; Close waits for it.
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}
	if opts.CredsFile != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(opts.CredsFile))
	}
	nc, err := nats.Connect(opts.URL, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", opts.URL, err)
	}
	if err := checkVersion(nc.ConnectedServerVersion()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("open NATS store at %s: %w", opts.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open JetStream at %s: %w", opts.URL, err)
	}
	s := &Store{opts: opts, nc: nc, js: js, log: log, closed: closed, streams: make(map[string]*jsStream), swept: make(chan struct{})}
	// A NATS cluster that is still forming answers JetStream requests only
	// once it has a leader: wait for that as long as ctx allows.
	for {
		err := s.Ready(ctx)
		if err == nil {
			err = s.openMeta(ctx)
		}
		if err == nil {
			var sweepCtx context.Context
			sweepCtx, s.stopSweep = context.WithCancel(context.Background())
			go s.sweepLoop(sweepCtx)
			return s, nil
		}
		if errors.Is(err, ErrNoJetStream) {
			nc.Close()
			return nil, fmt.Errorf("open NATS store at %s: %w", opts.URL, err)
		}
		if !backoff.Sleep(ctx, 250*time.Millisecond) {
			nc.Close()
			return nil, fmt.Errorf("open NATS store at %s: %w (is JetStream on, and has the NATS cluster formed?)", opts.URL, err)
		}
	}
}

// ErrNoJetStream: the NATS server runs without JetStream.
var ErrNoJetStream = errors.New("JetStream is not enabled on the NATS server (start it with -js, or jetstream {} in its config)")

// MinServerVersion is the oldest NATS server the store works with: it
// reads history with batched direct gets (2.11) and keeps epochs in
// stream metadata (2.10).
const MinServerVersion = "2.11.0"

// checkVersion refuses a NATS server older than MinServerVersion.
func checkVersion(v string) error {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil {
		return fmt.Errorf("NATS server version %q not understood; pushd needs %s or newer", v, MinServerVersion)
	}
	if major < 2 || (major == 2 && minor < 11) {
		return fmt.Errorf("NATS server %s is too old; pushd needs %s or newer", v, MinServerVersion)
	}
	return nil
}
