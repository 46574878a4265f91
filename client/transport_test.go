package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// refuse answers requests that match with 400 and a plain text body, as a
// proxy that does not pass them might; the rest go to the server. It counts
// what it refused.
func refuse(match func(*http.Request) bool, refused *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) {
				refused.Add(1)
				http.Error(w, "proxy: not supported here", http.StatusBadRequest)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func isUpgrade(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

func wantsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func TestAutoFallsBackToSSEWhenUpgradeIsRefused(t *testing.T) {
	var refused atomic.Int64
	s := startPushd(t, pushdtest.Wrap(refuse(isUpgrade, &refused)))
	c := newClient(t, s, "alice")
	var states record[client.StateChange]
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{OnState: states.add, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	waitState(t, sub, connectedWith(client.TransportSSE))
	want := publish(t, c, "lobby", "via sse")
	sameEvent(t, recv(t, sub), *want)

	tried := func() []client.Transport {
		var ts []client.Transport
		for _, sc := range states.all() {
			if sc.State == client.StateConnecting {
				ts = append(ts, sc.Transport)
			}
		}
		return ts
	}
	if got := tried(); !slices.Equal(got, []client.Transport{client.TransportWebSocket, client.TransportSSE}) {
		t.Fatalf("tried %v, want ws then sse", got)
	}

	// After a drop it goes back to what worked, without asking for an
	// upgrade again.
	s.DropConns()
	waitState(t, sub, func(sc client.StateChange) bool { return sc.State == client.StateReconnecting })
	waitState(t, sub, connectedWith(client.TransportSSE))
	want = publish(t, c, "lobby", "still sse")
	sameEvent(t, recv(t, sub), *want)
	if n := refused.Load(); n != 1 {
		t.Fatalf("%d upgrade requests refused, want 1 (the reconnect should use SSE)", n)
	}
}

func TestAutoFallsBackToLongPollingWhenSSEIsRefusedToo(t *testing.T) {
	var refused atomic.Int64
	s := startPushd(t, pushdtest.Wrap(refuse(func(r *http.Request) bool { return isUpgrade(r) || wantsEventStream(r) }, &refused)))
	c := newClient(t, s, "alice")
	var states record[client.StateChange]
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{OnState: states.add, LongPollWait: 2 * time.Second})
	waitState(t, sub, connectedWith(client.TransportLongPoll))
	for _, text := range []string{"one", "two", "three"} {
		want := publish(t, c, "lobby", text)
		sameEvent(t, recv(t, sub), *want)
	}
	if n := refused.Load(); n != 2 {
		t.Fatalf("%d requests refused, want 2 (one upgrade, one event stream)", n)
	}
}

func TestExplicitTransportDoesNotFallBack(t *testing.T) {
	var refused atomic.Int64
	s := startPushd(t, pushdtest.Wrap(refuse(isUpgrade, &refused)))
	c := newClient(t, s, "alice")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Transport: client.TransportWebSocket})
	sc := waitState(t, sub, func(sc client.StateChange) bool { return sc.State == client.StateClosed })
	var pe *protocol.Error
	if !errors.As(sc.Err, &pe) || pe.Status != http.StatusBadRequest {
		t.Fatalf("closed with %v, want the proxy's 400 as *protocol.Error", sc.Err)
	}
	if _, open := <-sub.Events(); open {
		t.Fatal("Events still open after closed")
	}
}

func TestBatchSubprotocolIsAskedFor(t *testing.T) {
	var asked atomic.Value
	s := startPushd(t, pushdtest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpgrade(r) {
				asked.Store(r.Header.Get("Sec-WebSocket-Protocol"))
			}
			next.ServeHTTP(w, r)
		})
	}))
	c := newClient(t, s, "alice")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Batch: true})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	if got, _ := asked.Load().(string); got != protocol.BatchSubprotocol {
		t.Fatalf("Sec-WebSocket-Protocol %q, want %q", got, protocol.BatchSubprotocol)
	}
	// A burst, so that messages carry several events.
	for i := range 500 {
		s.PublishDirect(t, "lobby", "bot", fmt.Sprint(i))
	}
	for i, ev := range recvN(t, sub, 500) {
		if ev.Text != fmt.Sprint(i) {
			t.Fatalf("event %d: %q", i, ev.Text)
		}
	}
}

// countTransports counts the subscribe requests of each transport that
// reach the server.
func countTransports(ws, sse, poll *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/events") && r.URL.Query().Has("since") {
				switch {
				case isUpgrade(r):
					ws.Add(1)
				case wantsEventStream(r):
					sse.Add(1)
				default:
					poll.Add(1)
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestRefusedCredentialsEndTheSubscriptionWithoutFallingBack(t *testing.T) {
	var ws, sse, poll atomic.Int64
	s := startAuthPushd(t, pushdtest.Wrap(countTransports(&ws, &sse, &poll)))
	carol := token(t, "carol", server.Claims{Rooms: []string{"lobby"}, Publish: true})
	foreign := pushdtest.Token(t, []byte("not-this-servers-secret-at-all!!"), "carol", server.Claims{Rooms: []string{"lobby"}, Publish: true}, time.Hour)
	cases := []struct {
		name   string
		token  string
		opts   client.SubscribeOptions
		status int
		code   string
	}{
		// The token is for carol: acting as dave is forbidden.
		{"another user", carol, client.SubscribeOptions{User: "dave"}, http.StatusForbidden, protocol.CodeForbidden},
		// The token names rooms; this is not one of them.
		{"another room", carol, client.SubscribeOptions{}, http.StatusForbidden, protocol.CodeForbidden},
		// Not signed with the server's secret.
		{"bad signature", foreign, client.SubscribeOptions{}, http.StatusUnauthorized, protocol.CodeUnauthorized},
	}
	for _, tc := range cases {
		for _, tr := range []client.Transport{client.TransportAuto, client.TransportWebSocket, client.TransportSSE, client.TransportLongPoll} {
			t.Run(tc.name+"/"+string(tr), func(t *testing.T) {
				ws.Store(0)
				sse.Store(0)
				poll.Store(0)
				c := newClient(t, s, "", client.WithToken(tc.token))
				room := client.Room("lobby")
				if tc.name == "another room" {
					room = client.Room("elsewhere")
				}
				var states record[client.StateChange]
				opts := tc.opts
				opts.Transport, opts.Since, opts.OnState = tr, "0", states.add
				opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
				sub := subscribe(t, c, room, opts)
				for range sub.Events() {
					t.Fatal("event on a refused subscription")
				}
				var pe *protocol.Error
				if err := sub.Err(); !errors.As(err, &pe) || pe.Status != tc.status || pe.Code != tc.code {
					t.Fatalf("Err() = %v, want %d %s", err, tc.status, tc.code)
				}
				if strings.Contains(sub.Err().Error(), "refused:") {
					t.Errorf("Err() = %q: a refused token is not a refused transport", sub.Err())
				}
				first := tr
				if tr == client.TransportAuto {
					first = client.TransportWebSocket
				}
				var tried []client.Transport
				for _, sc := range states.all() {
					switch sc.State {
					case client.StateConnecting:
						tried = append(tried, sc.Transport)
					case client.StateReconnecting:
						t.Errorf("reconnecting after a refused token: %+v", sc)
					}
				}
				if !slices.Equal(tried, []client.Transport{first}) {
					t.Errorf("tried %v, want only %s", tried, first)
				}
				counts := map[client.Transport]int64{client.TransportWebSocket: ws.Load(), client.TransportSSE: sse.Load(), client.TransportLongPoll: poll.Load()}
				for other, n := range counts {
					if want := map[bool]int64{true: 1, false: 0}[other == first]; n != want {
						t.Errorf("%d %s requests reached the server, want %d", n, other, want)
					}
				}
			})
		}
	}
}

func TestProxyForbiddingTheUpgradeStillFallsBack(t *testing.T) {
	// A 403 that is not pushd's (no error body of its own) may be a proxy
	// that blocks WebSocket only: auto mode tries SSE.
	s := startPushd(t, pushdtest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpgrade(r) {
				http.Error(w, "<html>Forbidden by policy</html>", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	c := newClient(t, s, "alice")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Since: "0"})
	waitState(t, sub, connectedWith(client.TransportSSE))
	want := publish(t, c, "lobby", "past the proxy")
	sameEvent(t, recv(t, sub), *want)
}

func TestParseTransport(t *testing.T) {
	for in, want := range map[string]client.Transport{"": client.TransportAuto, "auto": client.TransportAuto, "ws": client.TransportWebSocket,
		"sse": client.TransportSSE, "longpoll": client.TransportLongPoll, "poll": client.TransportPoll} {
		if got, err := client.ParseTransport(in); err != nil || got != want {
			t.Errorf("ParseTransport(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := client.ParseTransport("carrier-pigeon"); err == nil {
		t.Error("ParseTransport accepted an unknown name")
	}
}
