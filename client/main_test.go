package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// The tests run a real pushd with internal/pushdtest; what is here are
// the helpers for the client's side of them.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests.
const waitTimeout = pushdtest.Timeout

// startPushd starts a pushd with the default config; opts are
// pushdtest.Start's.
func startPushd(t *testing.T, opts ...pushdtest.Option) *pushdtest.Server {
	t.Helper()
	return pushdtest.Start(t, server.Config{}, opts...)
}

// tokenSecret signs the tokens of the tests that run pushd with tokens.
var tokenSecret = []byte("a-client-test-secret-32-bytes-ok")

// startAuthPushd starts a pushd that takes only tokens signed with
// tokenSecret; opts are pushdtest.Start's.
func startAuthPushd(t *testing.T, opts ...pushdtest.Option) *pushdtest.Server {
	t.Helper()
	return pushdtest.Start(t, server.Config{AuthSecret: tokenSecret}, opts...)
}

// token returns a token of tokenSecret for user with claims, valid for
// an hour.
func token(t *testing.T, user string, claims server.Claims) string {
	t.Helper()
	return pushdtest.Token(t, tokenSecret, user, claims, time.Hour)
}

// newClient returns a client of s for user, with its own HTTP transport
// (closed in t.Cleanup) so tests do not share connections, logging to the
// test's log.
func newClient(t *testing.T, s *pushdtest.Server, user string, opts ...client.Option) *client.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	opts = append([]client.Option{client.WithHTTPClient(&http.Client{Transport: tr}), client.WithUser(user),
		client.WithLogger(testlog.Logger(t, slog.LevelDebug))}, opts...)
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

// recv returns the next event of sub.
func recv(t *testing.T, sub *client.Subscription) protocol.Event {
	t.Helper()
	ev, ok := received(t, sub.Events(), "event")
	if !ok {
		t.Fatalf("subscription ended: %v", sub.Err())
	}
	return ev
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

// waitFor waits until cond returns nil, failing the test with its last
// error after waitTimeout.
func waitFor(t *testing.T, cond func() error) {
	t.Helper()
	testwait.Until(t, waitTimeout, 5*time.Millisecond, cond)
}

// received returns the next value from ch, and false if ch is closed,
// failing the test after waitTimeout; what names the value.
func received[T any](t *testing.T, ch <-chan T, what string) (T, bool) {
	t.Helper()
	return testwait.Recv(t, waitTimeout, ch, what)
}

// waitState waits for a state change on sub.States() that satisfies ok,
// returning it.
func waitState(t *testing.T, sub *client.Subscription, ok func(client.StateChange) bool) client.StateChange {
	t.Helper()
	var got client.StateChange
	waitFor(t, func() error {
		for {
			select {
			case sc, open := <-sub.States():
				if !open {
					t.Fatalf("states closed before the state wanted; err %v", sub.Err())
				}
				if ok(sc) {
					got = sc
					return nil
				}
			default:
				return errors.New("no such state change")
			}
		}
	})
	return got
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

// record keeps what a callback (OnState, OnProgress) reports, for checks
// after the fact.
type record[T any] struct {
	mu    sync.Mutex
	items []T
}

func (r *record[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, v)
}

func (r *record[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

// has reports whether some recorded value satisfies ok.
func (r *record[T]) has(ok func(T) bool) bool {
	return slices.ContainsFunc(r.all(), ok)
}
