package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/server"
)

// The test binary doubles as pushtui (pushdtest.ProgramCommand): the
// terminal test runs it in a pty.
func TestMain(m *testing.M) {
	pushdtest.AsProgram("pushtui", run)
	code := m.Run()
	pushdtest.RemoveBuilt()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// wait bounds every wait in these tests; nothing takes near it when all
// is well.
const wait = time.Minute

// startServer starts pushd (pushdtest's) for these tests; it stops when
// the test ends.
func startServer(t *testing.T) *pushdtest.Server {
	t.Helper()
	return startServerWith(t, nil, nil)
}

// startServerWith starts pushd with its configuration changed by config,
// if not nil, and wrap, if not nil, standing in front of it as a proxy
// would.
func startServerWith(t *testing.T, config func(*server.Config), wrap func(http.Handler) http.Handler) *pushdtest.Server {
	t.Helper()
	cfg := server.Config{
		// Longer than the short-poll interval (1 s), so polling users
		// stay present between polls.
		PresenceGrace: 1500 * time.Millisecond,
		LongPollWait:  2 * time.Second,
	}
	if config != nil {
		config(&cfg)
	}
	return pushdtest.Start(t, cfg, pushdtest.Wrap(wrap), pushdtest.LogLevel(slog.LevelWarn))
}

// testSecret signs the tokens of the tests whose server needs them.
var testSecret = []byte("a-test-secret-of-enough-length")

// token mints a token of testSecret for user with claims, valid for an
// hour.
func token(t *testing.T, user string, claims server.Claims) string {
	t.Helper()
	return pushdtest.Token(t, testSecret, user, claims, time.Hour)
}

// syncBuffer is an output that tests read while the program writes it.
type syncBuffer struct{ testlog.Buffer }

func newSyncBuffer() *syncBuffer { return &syncBuffer{} }

// waitUntil waits until cond returns nil, failing the test with its last
// error after wait.
func waitUntil(t *testing.T, cond func() error) {
	t.Helper()
	testwait.Until(t, wait, 10*time.Millisecond, cond)
}

// waitFor waits until cond holds for what was written, failing after
// wait.
func (s *syncBuffer) waitFor(t *testing.T, what string, cond func(string) bool) string {
	t.Helper()
	var got string
	waitUntil(t, func() error {
		if got = s.String(); !cond(got) {
			return fmt.Errorf("no %s; got:\n%s", what, got)
		}
		return nil
	})
	return got
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

// exits waits for the run to end, and fails the test unless its exit code
// is want.
func (r *running) exits(t *testing.T, want int) {
	t.Helper()
	if code := r.wait(t); code != want {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, want, r.errOut.String())
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
