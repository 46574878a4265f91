package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushd/push/server"
)

// The test binary doubles as pushtui: started with this variable set, it
// runs main with the arguments after "--". The terminal test runs it in a
// pty that way.
const asPushtui = "PUSHTUI_TEST_RUN_AS_PUSHTUI"

func TestMain(m *testing.M) {
	if os.Getenv(asPushtui) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"pushtui"}, os.Args[i+1:]...)
				break
			}
		}
		os.Exit(run())
	}
	goleak.VerifyTestMain(m)
}

// wait bounds every wait in these tests; nothing takes near it when all
// is well.
const wait = 15 * time.Second

// testServer is a real pushd on 127.0.0.1. restart swaps in a new
// instance (a new memory store: new epochs) on the same address, as a
// restarted pushd would be; down and up take it off the network and put
// it back, as a killed pushd restarted with its data would be.
type testServer struct {
	URL string
	cfg server.Config
	cur atomic.Pointer[server.Server]
	ts  *httptest.Server
	ln  *downListener
}

// startServer starts pushd; everything stops in t.Cleanup.
func startServer(t *testing.T) *testServer {
	t.Helper()
	return startServerWith(t, nil, nil)
}

// startServerWith starts pushd with its configuration changed by config,
// if not nil, and wrap, if not nil, standing in front of it as a proxy
// would.
func startServerWith(t *testing.T, config func(*server.Config), wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	s := &testServer{cfg: server.Config{
		// Longer than the short-poll interval (1 s), so polling users
		// stay present between polls.
		PresenceGrace: 1500 * time.Millisecond,
		LongPollWait:  2 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}}
	if config != nil {
		config(&s.cfg)
	}
	srv, err := server.New(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.cur.Store(srv)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cur.Load().ServeHTTP(w, r)
	})
	if wrap != nil {
		h = wrap(h)
	}
	s.ts = httptest.NewUnstartedServer(h)
	s.ln = newDownListener(s.ts.Listener)
	s.ts.Listener = s.ln
	s.ts.Start()
	s.URL = s.ts.URL
	t.Cleanup(func() {
		s.ln.up(t) // no-op unless a test left it down
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := s.cur.Load().Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
	return s
}

// down makes pushd unreachable, as a killed one is: every open connection
// is cut and new ones are refused until up.
func (s *testServer) down(t *testing.T) {
	t.Helper()
	s.ln.down(t)
}

// up makes pushd reachable again on the same address.
func (s *testServer) up(t *testing.T) {
	t.Helper()
	s.ln.up(t)
}

// downListener is the server's listener, which down closes (connections
// are refused) and up opens again on the same address. Going down it cuts
// the connections it accepted, WebSockets and event streams included.
type downListener struct {
	addr   net.Addr
	mu     sync.Mutex
	inner  net.Listener  // nil while down
	back   chan struct{} // while down: closed when up again or closed
	conns  map[net.Conn]struct{}
	closed bool
}

func newDownListener(inner net.Listener) *downListener {
	return &downListener{addr: inner.Addr(), inner: inner, conns: make(map[net.Conn]struct{})}
}

func (l *downListener) Addr() net.Addr { return l.addr }

func (l *downListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		inner, back, closed := l.inner, l.back, l.closed
		l.mu.Unlock()
		switch {
		case closed:
			return nil, net.ErrClosed
		case inner == nil:
			<-back
			continue
		}
		c, err := inner.Accept()
		l.mu.Lock()
		current := l.inner == inner && !l.closed
		if err == nil && current {
			tc := &trackedConn{Conn: c, l: l}
			l.conns[tc] = struct{}{}
			l.mu.Unlock()
			return tc, nil
		}
		l.mu.Unlock()
		if err == nil {
			c.Close()
			continue
		}
		if !current {
			continue // taken down (or closed) meanwhile: look again
		}
		return nil, err
	}
}

func (l *downListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.inner != nil {
		return l.inner.Close()
	}
	close(l.back)
	return nil
}

func (l *downListener) down(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	if l.inner == nil || l.closed {
		l.mu.Unlock()
		return
	}
	l.inner.Close()
	l.inner, l.back = nil, make(chan struct{})
	conns := l.conns
	l.conns = make(map[net.Conn]struct{})
	l.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

func (l *downListener) up(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inner != nil || l.closed {
		return
	}
	ln, err := net.Listen("tcp", l.addr.String())
	if err != nil {
		t.Fatalf("listen again on %s: %v", l.addr, err)
	}
	l.inner = ln
	close(l.back)
}

// trackedConn is a connection downListener cuts when it goes down.
type trackedConn struct {
	net.Conn
	l *downListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// restart replaces pushd with a new instance and shuts the old one down,
// which tells its subscribers to reconnect.
func (s *testServer) restart(t *testing.T) {
	t.Helper()
	srv, err := server.New(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := s.cur.Swap(srv)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := old.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// testLog sends server logs to t.Logf.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("pushd: %s", bytes.TrimSpace(p))
	return len(p), nil
}

// syncBuffer is an output that tests read while the program writes it.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until cond holds for what was written, failing after
// wait.
func (s *syncBuffer) waitFor(t *testing.T, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		if got := s.String(); cond(got) {
			return got
		}
		select {
		case <-s.changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; got:\n%s", wait, what, s.String())
		}
	}
}

// waitContains waits until the output holds every one of wants.
func (s *syncBuffer) waitContains(t *testing.T, wants ...string) string {
	t.Helper()
	return s.waitFor(t, strings.Join(wants, " and "), func(got string) bool {
		for _, w := range wants {
			if !strings.Contains(got, w) {
				return false
			}
		}
		return true
	})
}

// running is a pushtui run in progress.
type running struct {
	out, errOut *syncBuffer
	cancel      context.CancelFunc
	done        chan int
}

// env is the environment every run gets, plus extra ("KEY=value").
func env(extra ...string) func(string) string {
	m := map[string]string{"USER": "tester"}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// start runs pushtui with args in the background, not on a terminal,
// reading stdin (nil: nothing).
func start(t *testing.T, stdin io.Reader, getenv func(string) string, args ...string) *running {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	if getenv == nil {
		getenv = env()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: newSyncBuffer(), errOut: newSyncBuffer(), cancel: cancel, done: make(chan int, 1)}
	a := newApp(stdin, r.out, r.errOut, getenv)
	go func() {
		defer a.Close()
		r.done <- a.Exit(a.Run(ctx, args))
	}()
	t.Cleanup(func() {
		cancel()
		r.wait(t)
	})
	return r
}

// wait waits for the run to end and returns its exit code.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code // later waits see it too
		return code
	case <-time.After(wait):
		t.Fatalf("pushtui did not end within %v; stderr:\n%s", wait, r.errOut.String())
		return -1
	}
}

// stop interrupts the run (as Ctrl+C would) and returns its exit code.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// pushtui runs pushtui with args to the end.
func pushtui(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	r := start(t, stdin, nil, args...)
	code = r.wait(t)
	return r.out.String(), r.errOut.String(), code
}

// transports are the transports every end-to-end test runs over.
var transports = []string{"ws", "sse", "longpoll", "poll"}
