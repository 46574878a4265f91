package client_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is a real pushd behind an httptest.Server on 127.0.0.1. The
// pushd instance can be swapped for a new one (restart) on the same
// address, and every client connection, hijacked WebSockets included, can
// be cut (dropConns).
type testServer struct {
	t   *testing.T
	URL string
	cfg server.Config
	ts  *httptest.Server
	cur atomic.Pointer[server.Server]

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startServer starts pushd with cfg. wrap, if not nil, stands in front of
// it, as a proxy would. Everything is stopped in t.Cleanup.
func startServer(t *testing.T, cfg server.Config, wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s := &testServer{t: t, cfg: cfg, conns: make(map[net.Conn]struct{})}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	s.cur.Store(srv)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cur.Load().ServeHTTP(w, r)
	})
	if wrap != nil {
		h = wrap(h)
	}
	s.ts = httptest.NewUnstartedServer(h)
	s.ts.Listener = &trackingListener{Listener: s.ts.Listener, s: s}
	s.ts.Start()
	s.URL = s.ts.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.cur.Load().Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		s.dropConns()
		s.ts.Close()
	})
	return s
}

// server returns the pushd instance serving now.
func (s *testServer) server() *server.Server { return s.cur.Load() }

// restart replaces pushd with a new instance (a new memory store, so new
// epochs) on the same address, and shuts the old one down, which tells its
// subscribers to reconnect.
func (s *testServer) restart() {
	s.t.Helper()
	next, err := server.New(s.cfg)
	if err != nil {
		s.t.Fatalf("server.New: %v", err)
	}
	old := s.cur.Swap(next)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := old.Shutdown(ctx); err != nil {
		s.t.Errorf("old server shutdown: %v", err)
	}
}

// dropConns cuts every connection clients have open to the server.
func (s *testServer) dropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
	clear(s.conns)
}

// trackingListener remembers accepted connections for dropConns.
type trackingListener struct {
	net.Listener
	s *testServer
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.conns[c] = struct{}{}
		l.s.mu.Unlock()
	}
	return c, err
}

// testWriter sends log lines to t.Logf.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newClient returns a client of s for user, with its own HTTP transport
// (closed in t.Cleanup) so tests do not share connections.
func newClient(t *testing.T, s *testServer, user string, opts ...client.Option) *client.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	opts = append([]client.Option{client.WithHTTPClient(&http.Client{Transport: tr}), client.WithUser(user),
		client.WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)
	c, err := client.New(s.URL, opts...)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// subscribe starts a subscription closed in t.Cleanup.
func subscribe(t *testing.T, c *client.Client, stream client.Stream, opts client.SubscribeOptions) *client.Subscription {
	t.Helper()
	sub := c.Subscribe(context.Background(), stream, opts)
	t.Cleanup(sub.Close)
	return sub
}

// waitFor polls cond every 5 ms until it holds, failing the test after
// timeout. The timeout is a bound on a hang, not an assertion on speed.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitTimeout bounds every wait in these tests.
const waitTimeout = 20 * time.Second

// recv returns the next event of sub, failing after waitTimeout.
func recv(t *testing.T, sub *client.Subscription) protocol.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case ev, ok := <-sub.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return ev
	case <-timer.C:
		t.Fatalf("no event within %s", waitTimeout)
	}
	panic("unreachable")
}

// recvN returns the next n events of sub.
func recvN(t *testing.T, sub *client.Subscription, n int) []protocol.Event {
	t.Helper()
	evs := make([]protocol.Event, 0, n)
	for range n {
		evs = append(evs, recv(t, sub))
	}
	return evs
}

// waitState waits for a state change on sub.States() that satisfies ok,
// returning it.
func waitState(t *testing.T, sub *client.Subscription, ok func(client.StateChange) bool) client.StateChange {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case sc, open := <-sub.States():
			if !open {
				t.Fatalf("states closed before the state wanted; err %v", sub.Err())
			}
			if ok(sc) {
				return sc
			}
		case <-timer.C:
			t.Fatalf("no such state change within %s", waitTimeout)
		}
	}
}

// connectedWith matches StateConnected over tr.
func connectedWith(tr client.Transport) func(client.StateChange) bool {
	return func(sc client.StateChange) bool {
		return sc.State == client.StateConnected && sc.Transport == tr
	}
}

// publish posts text to room through c, failing the test on error.
func publish(t *testing.T, c *client.Client, room, text string) *protocol.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ev, err := c.Publish(ctx, room, text)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ev
}

// stateLog records state changes from OnState, for checks after the fact.
type stateLog struct {
	mu     sync.Mutex
	states []client.StateChange
}

func (l *stateLog) add(sc client.StateChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, sc)
}

func (l *stateLog) all() []client.StateChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]client.StateChange(nil), l.states...)
}

// has reports whether some recorded change satisfies ok.
func (l *stateLog) has(ok func(client.StateChange) bool) bool {
	for _, sc := range l.all() {
		if ok(sc) {
			return true
		}
	}
	return false
}
