package pushdtest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/server"
)

// Server is a pushd under test: a server.Server behind a listener on
// 127.0.0.1.
type Server struct {
	// Remote is the server as its clients reach it, at
	// http://127.0.0.1:port; its Client's idle connections are closed
	// when the test ends.
	*Remote

	t   testing.TB
	cfg server.Config

	mu        sync.Mutex
	enteredBy map[string]int // requests that reached the server, by SubOptions.Name
	cur       atomic.Pointer[server.Server]
	hs        *httptest.Server
	ln        *switchListener
	tr        *http.Transport
	stopped   sync.Once
}

// Option changes how Start runs a server.
type Option func(*options)

type options struct {
	wrap     func(http.Handler) http.Handler
	logLevel slog.Level
}

// Wrap puts h in front of the server, as a proxy would stand; a nil h is
// no proxy.
func Wrap(h func(http.Handler) http.Handler) Option {
	return func(o *options) { o.wrap = h }
}

// LogLevel sets the least level of the server's log lines that reach the
// test's log (default: debug).
func LogLevel(l slog.Level) Option {
	return func(o *options) { o.logLevel = l }
}

// Start runs a server for cfg until the test ends. The server's logs go
// to t.Log, unless cfg has a Logger. When the test ends it is shut down,
// which must succeed (every subscription the test opened has ended by
// then, or ends at the shutdown), and its listener closed.
func Start(t testing.TB, cfg server.Config, opts ...Option) *Server {
	t.Helper()
	o := options{logLevel: slog.LevelDebug}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.Logger == nil {
		cfg.Logger = testlog.Logger(t, o.logLevel) // its cleanup runs after the server's
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	s := &Server{t: t, cfg: cfg, enteredBy: make(map[string]int)}
	s.cur.Store(srv)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get(watcherHeader); name != "" {
			s.mu.Lock()
			s.enteredBy[name]++
			s.mu.Unlock()
		}
		s.cur.Load().ServeHTTP(w, r)
	})
	if o.wrap != nil {
		h = o.wrap(h)
	}
	s.hs = httptest.NewUnstartedServer(h)
	s.ln = newSwitchListener(s.hs.Listener)
	s.hs.Listener = s.ln
	s.hs.Start()
	s.tr = &http.Transport{MaxIdleConnsPerHost: 64}
	s.Remote = newRemote(s.hs.URL, &http.Client{Transport: s.tr})
	s.Remote.entered = s.Entered
	t.Cleanup(s.stop)
	return s
}

// Stop shuts the server down and takes it off the network for good, as a
// pushd that has gone away; the test's end does nothing more.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop()
}

func (s *Server) stop() {
	s.stopped.Do(func() {
		if err := s.ln.up(); err != nil { // a test may have left it down
			s.t.Errorf("listen again on %s: %v", s.ln.addr, err)
		}
		s.shutdown(s.cur.Load(), "shutdown")
		s.tr.CloseIdleConnections()
		s.hs.CloseClientConnections()
		s.hs.Close()
	})
}

// Srv returns the server.Server serving now.
func (s *Server) Srv() *server.Server { return s.cur.Load() }

// Config returns the configuration the server was started with (its
// Logger filled in).
func (s *Server) Config() server.Config { return s.cfg }

// Restart replaces the server with a new instance made from the same
// configuration, on the same address, and shuts the old one down, which
// tells its subscribers to reconnect. With the configuration's own store
// (none given) the new instance has a new memory store, so new epochs; a
// store given in the configuration is kept, as a restart on durable data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.RestartWith(t, s.cfg)
}

// RestartWith is Restart with another configuration; it becomes the one
// later restarts use.
func (s *Server) RestartWith(t testing.TB, cfg server.Config) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = s.cfg.Logger
	}
	next, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	s.cfg = cfg
	s.shutdown(s.cur.Swap(next), "shutdown of the old instance")
}

// shutdown shuts srv down within Timeout, reporting a failure to the test.
func (s *Server) shutdown(srv *server.Server, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		s.t.Errorf("%s: %v", what, err)
	}
}

// Down takes the server off the network, as a killed pushd is: every open
// connection is cut, and new ones are refused until Up. The instance
// itself keeps its state.
func (s *Server) Down(t testing.TB) {
	t.Helper()
	s.ln.down()
}

// Up puts the server back on the network on the same address.
func (s *Server) Up(t testing.TB) {
	t.Helper()
	if err := s.ln.up(); err != nil {
		t.Fatalf("listen again on %s: %v", s.ln.addr, err)
	}
}

// watcherHeader names the subscriber a poll comes from (SubOptions.Name).
const watcherHeader = "X-Pushdtest-Subscriber"

// Entered returns how many requests of the subscriber named name
// (SubOptions.Name) have reached the server: a test can tell that a long
// poll is waiting at the server, not on its way.
func (s *Server) Entered(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enteredBy[name]
}

// DropConns cuts every connection clients have open to the server,
// hijacked WebSockets included, without taking it off the network.
func (s *Server) DropConns() { s.ln.cut() }
