package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// transportCase is one way of subscribing.
type transportCase struct {
	name string
	opts client.SubscribeOptions
	want client.Transport
}

// transportCases covers every transport, WebSocket with and without the
// batch subprotocol, and auto (which picks WebSocket on a plain server).
func transportCases() []transportCase {
	fast := func(o client.SubscribeOptions) client.SubscribeOptions {
		o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
		o.PollInterval = 20 * time.Millisecond
		o.LongPollWait = 2 * time.Second
		return o
	}
	return []transportCase{
		{"ws", fast(client.SubscribeOptions{Transport: client.TransportWebSocket}), client.TransportWebSocket},
		{"ws-batch", fast(client.SubscribeOptions{Transport: client.TransportWebSocket, Batch: true}), client.TransportWebSocket},
		{"sse", fast(client.SubscribeOptions{Transport: client.TransportSSE}), client.TransportSSE},
		{"longpoll", fast(client.SubscribeOptions{Transport: client.TransportLongPoll}), client.TransportLongPoll},
		{"poll", fast(client.SubscribeOptions{Transport: client.TransportPoll}), client.TransportPoll},
		{"auto", fast(client.SubscribeOptions{}), client.TransportWebSocket},
	}
}

// sameEvent fails unless got is want as the server stored it.
func sameEvent(t *testing.T, got, want protocol.Event) {
	t.Helper()
	if got.Seq != want.Seq || got.Epoch != want.Epoch || got.Stream != want.Stream || got.Type != want.Type ||
		!got.Time.Equal(want.Time) || got.User != want.User || got.Text != want.Text || got.Reason != want.Reason {
		t.Fatalf("event\n got %+v\nwant %+v", got, want)
	}
}

func TestEachTransportDeliversEventsInOrder(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, server.Config{}, nil)
			c := newClient(t, s, "alice")
			sub := subscribe(t, c, client.Room("lobby"), tc.opts)
			waitState(t, sub, connectedWith(tc.want))
			if got := sub.Transport(); got != tc.want {
				t.Fatalf("Transport() = %q, want %q", got, tc.want)
			}

			// Texts that SSE framing and JSON escaping must carry intact.
			texts := []string{"hi", "two\nlines", "crlf\r\nline", `quotes "and" \backslash`, "<b>&amp;</b>", "ünïcødé ✓", "data: not a field", ": not a comment"}
			for i := range 20 {
				texts = append(texts, fmt.Sprintf("m%02d", i))
			}
			var want []protocol.Event
			for _, text := range texts {
				want = append(want, *publish(t, c, "lobby", text))
			}
			got := recvN(t, sub, len(want))
			for i := range want {
				sameEvent(t, got[i], want[i])
				if got[i].Stream != "room/lobby" || got[i].Type != protocol.TypeMessage || got[i].User != "alice" {
					t.Fatalf("event %d: %+v", i, got[i])
				}
				if i > 0 && got[i].Seq != got[i-1].Seq+1 {
					t.Fatalf("event %d has seq %d after %d", i, got[i].Seq, got[i-1].Seq)
				}
			}
			cur, ok := sub.Cursor()
			if !ok || cur != want[len(want)-1].Cursor() {
				t.Fatalf("Cursor() = %v, %v; want %v", cur, ok, want[len(want)-1].Cursor())
			}
		})
	}
}

func TestSinceZeroStartsAtTheBeginning(t *testing.T) {
	s := startServer(t, server.Config{}, nil)
	c := newClient(t, s, "alice")
	first := publish(t, c, "lobby", "before")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Since: "0"})
	sameEvent(t, recv(t, sub), *first)
	second := publish(t, c, "lobby", "after")
	sameEvent(t, recv(t, sub), *second)
}

func TestSinceCursorStartsAfterIt(t *testing.T) {
	s := startServer(t, server.Config{}, nil)
	c := newClient(t, s, "alice")
	a := publish(t, c, "lobby", "a")
	b := publish(t, c, "lobby", "b")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Since: a.Cursor().String(), Transport: client.TransportSSE})
	sameEvent(t, recv(t, sub), *b)
}

func TestLiveEndSkipsOlderEvents(t *testing.T) {
	s := startServer(t, server.Config{}, nil)
	c := newClient(t, s, "alice")
	publish(t, c, "lobby", "old")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	fresh := publish(t, c, "lobby", "new")
	sameEvent(t, recv(t, sub), *fresh)
}

func TestResumeAfterDropDeliversEachEventOnce(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, server.Config{}, nil)
			c := newClient(t, s, "alice")
			var states stateLog
			opts := tc.opts
			opts.OnState = states.add
			sub := subscribe(t, c, client.Room("lobby"), opts)
			waitState(t, sub, connectedWith(tc.want))

			// Publish from the server side while the test cuts every client
			// connection again and again; the subscriber reads meanwhile.
			const total, dropEvery = 60, 15
			hub := s.server().Hub()
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for i := range total {
				if i > 0 && i%dropEvery == 0 {
					s.dropConns()
				}
				if _, err := hub.Publish(ctx, protocol.RoomStream("lobby"), protocol.Event{Type: protocol.TypeMessage, User: "bot", Text: fmt.Sprintf("m%02d", i)}); err != nil {
					t.Fatalf("hub publish: %v", err)
				}
			}
			got := recvN(t, sub, total)
			for i, ev := range got {
				if want := fmt.Sprintf("m%02d", i); ev.Text != want || ev.Type != protocol.TypeMessage {
					t.Fatalf("event %d: got %q (%s), want %q", i, ev.Text, ev.Type, want)
				}
				if i > 0 && (ev.Seq != got[i-1].Seq+1 || ev.Epoch != got[i-1].Epoch) {
					t.Fatalf("event %d: %s:%d after %s:%d", i, ev.Epoch, ev.Seq, got[i-1].Epoch, got[i-1].Seq)
				}
			}
			// Nothing is repeated after the last one either: the next event
			// is the next one published.
			last := publish(t, c, "lobby", "sentinel")
			sameEvent(t, recv(t, sub), *last)

			if tc.want == client.TransportWebSocket || tc.want == client.TransportSSE {
				// Streams notice the cut; polls may not (a cut idle
				// connection is retried by net/http on its own).
				if !states.has(func(sc client.StateChange) bool { return sc.State == client.StateReconnecting }) {
					t.Fatalf("no reconnecting state after the connections were cut: %+v", states.all())
				}
			}
		})
	}
}

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
	s := startServer(t, server.Config{}, refuse(isUpgrade, &refused))
	c := newClient(t, s, "alice")
	var states stateLog
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
	s.dropConns()
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
	s := startServer(t, server.Config{}, refuse(func(r *http.Request) bool { return isUpgrade(r) || wantsEventStream(r) }, &refused))
	c := newClient(t, s, "alice")
	var states stateLog
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
	s := startServer(t, server.Config{}, refuse(isUpgrade, &refused))
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

func TestResetAfterServerRestart(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, server.Config{}, nil)
			c := newClient(t, s, "alice")
			opts := tc.opts
			opts.Since = "0"
			sub := subscribe(t, c, client.Room("lobby"), opts)
			var before []protocol.Event
			for _, text := range []string{"a", "b", "c"} {
				before = append(before, *publish(t, c, "lobby", text))
			}
			for i, ev := range recvN(t, sub, len(before)) {
				sameEvent(t, ev, before[i])
			}

			s.restart()
			reset := recv(t, sub)
			if reset.Type != protocol.TypeReset || reset.Reason != protocol.ResetEpochChanged {
				t.Fatalf("after restart got %+v, want a reset (epoch_changed)", reset)
			}
			if reset.Epoch == before[0].Epoch || reset.Stream != "room/lobby" {
				t.Fatalf("reset %+v: want a new epoch of room/lobby", reset)
			}
			after := publish(t, c, "lobby", "on the new server")
			got := recv(t, sub)
			sameEvent(t, got, *after)
			if got.Epoch != reset.Epoch || got.Seq != reset.Seq+1 {
				t.Fatalf("first event after reset at %s:%d, reset at %s:%d", got.Epoch, got.Seq, reset.Epoch, reset.Seq)
			}
		})
	}
}

func TestStatesAreReported(t *testing.T) {
	s := startServer(t, server.Config{}, nil)
	c := newClient(t, s, "alice")
	var states stateLog
	sub := c.Subscribe(context.Background(), client.Room("lobby"), client.SubscribeOptions{
		Transport: client.TransportWebSocket, OnState: states.add,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
	})
	defer sub.Close()
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	s.dropConns()
	rec := waitState(t, sub, func(sc client.StateChange) bool { return sc.State == client.StateReconnecting })
	if rec.Attempt != 1 || rec.RetryIn < 0 || rec.RetryIn > 400*time.Millisecond || rec.Err == nil || rec.Transport != client.TransportWebSocket {
		t.Fatalf("reconnecting state %+v: want attempt 1, a wait within the bounds, the error, ws", rec)
	}
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	sub.Close()
	if err := sub.Err(); err != nil {
		t.Fatalf("Err() after Close = %v, want nil", err)
	}

	all := states.all()
	var kinds []client.ConnState
	for _, sc := range all {
		kinds = append(kinds, sc.State)
	}
	want := []client.ConnState{client.StateConnecting, client.StateConnected, client.StateReconnecting, client.StateConnecting, client.StateConnected, client.StateClosed}
	if !slices.Equal(kinds, want) {
		t.Fatalf("states %v, want %v", kinds, want)
	}
	if last := all[len(all)-1]; last.Err != nil {
		t.Fatalf("closed state carries %v, want nil after Close", last.Err)
	}
	// The States channel got the same changes and is closed.
	var fromChan []client.ConnState
	for sc := range sub.States() {
		fromChan = append(fromChan, sc.State)
	}
	if len(fromChan) == 0 || fromChan[len(fromChan)-1] != client.StateClosed {
		t.Fatalf("States() gave %v, want it to end with closed", fromChan)
	}
}

// TestConnectedReportedOnAQuietStream: every transport reports connected
// once the server accepts the subscription, even when no event comes (a
// long poll answers only at an event or when its wait runs out, here a
// minute).
func TestConnectedReportedOnAQuietStream(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, server.Config{LongPollWait: time.Minute}, nil)
			c := newClient(t, s, "alice")
			opts := tc.opts
			opts.LongPollWait = time.Minute // past waitTimeout
			sub := subscribe(t, c, client.Room("quiet"), opts)
			waitState(t, sub, connectedWith(tc.want))
			// Events come all the same, not a poll late.
			want := publish(t, c, "quiet", "after connecting")
			sameEvent(t, recv(t, sub), *want)
		})
	}
}

func TestPermanentErrorsEndTheSubscription(t *testing.T) {
	s := startServer(t, server.Config{}, nil)
	c := newClient(t, s, "alice")
	cases := []struct {
		name   string
		stream client.Stream
		opts   client.SubscribeOptions
		code   string
	}{
		{"bad room auto", client.Room("no!"), client.SubscribeOptions{}, protocol.CodeInvalidName},
		{"bad room ws", client.Room("no!"), client.SubscribeOptions{Transport: client.TransportWebSocket}, protocol.CodeInvalidName},
		{"bad room sse", client.Room("no!"), client.SubscribeOptions{Transport: client.TransportSSE}, protocol.CodeInvalidName},
		{"bad room longpoll", client.Room("no!"), client.SubscribeOptions{Transport: client.TransportLongPoll}, protocol.CodeInvalidName},
		{"bad room poll", client.Room("no!"), client.SubscribeOptions{Transport: client.TransportPoll}, protocol.CodeInvalidName},
		{"bad user", client.Room("lobby"), client.SubscribeOptions{User: "a b"}, protocol.CodeInvalidName},
		{"no such task", client.Task("nope"), client.SubscribeOptions{}, protocol.CodeNotFound},
		{"bad cursor epoch", client.Room("lobby"), client.SubscribeOptions{Since: "0:x"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := subscribe(t, c, tc.stream, tc.opts)
			for range sub.Events() {
				t.Fatal("event on a refused subscription")
			}
			<-sub.Done()
			err := sub.Err()
			if err == nil {
				t.Fatal("Err() = nil")
			}
			if tc.code == "" {
				if !errors.Is(err, protocol.ErrBadCursor) {
					t.Fatalf("Err() = %v, want a bad cursor", err)
				}
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != tc.code || pe.Status/100 != 4 {
				t.Fatalf("Err() = %v, want *protocol.Error %s", err, tc.code)
			}
		})
	}
}

func TestCancelledContextEndsTheSubscription(t *testing.T) {
	s := startServer(t, server.Config{}, nil)
	c := newClient(t, s, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	sub := c.Subscribe(ctx, client.Room("lobby"), client.SubscribeOptions{})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	cancel()
	<-sub.Done()
	if err := sub.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() = %v, want context.Canceled", err)
	}
	sub.Close() // still fine
}

func TestSubscriptionUserIsPresent(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, server.Config{PresenceGrace: 100 * time.Millisecond}, nil)
			c := newClient(t, s, "alice")
			opts := tc.opts
			opts.User = "bob"
			sub := c.Subscribe(context.Background(), client.Room("lobby"), opts)
			defer sub.Close()
			present := func(want bool) func() bool {
				return func() bool {
					users, err := c.Presence(context.Background(), "lobby")
					if err != nil {
						t.Fatalf("presence: %v", err)
					}
					return slices.Contains(users, "bob") == want
				}
			}
			waitFor(t, waitTimeout, "bob to be present", present(true))
			ev := recv(t, sub)
			if ev.Type != protocol.TypeLogin || ev.User != "bob" {
				t.Fatalf("first event %+v, want bob's login", ev)
			}
			sub.Close()
			waitFor(t, waitTimeout, "bob to leave", present(false))
		})
	}
}

func TestBatchSubprotocolIsAskedFor(t *testing.T) {
	var asked atomic.Value
	s := startServer(t, server.Config{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpgrade(r) {
				asked.Store(r.Header.Get("Sec-WebSocket-Protocol"))
			}
			next.ServeHTTP(w, r)
		})
	})
	c := newClient(t, s, "alice")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Batch: true})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	if got, _ := asked.Load().(string); got != protocol.BatchSubprotocol {
		t.Fatalf("Sec-WebSocket-Protocol %q, want %q", got, protocol.BatchSubprotocol)
	}
	// A burst, so that messages carry several events.
	hub := s.server().Hub()
	for i := range 500 {
		if _, err := hub.Publish(context.Background(), protocol.RoomStream("lobby"), protocol.Event{Type: protocol.TypeMessage, User: "bot", Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range recvN(t, sub, 500) {
		if ev.Text != fmt.Sprint(i) {
			t.Fatalf("event %d: %q", i, ev.Text)
		}
	}
}

func TestSlowReaderLosesNothing(t *testing.T) {
	s := startServer(t, server.Config{}, nil)
	c := newClient(t, s, "alice")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Buffer: 1, Transport: client.TransportWebSocket})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	hub := s.server().Hub()
	text := strings.Repeat("x", 1000)
	const total = 300
	for i := range total {
		if _, err := hub.Publish(context.Background(), protocol.RoomStream("lobby"), protocol.Event{Type: protocol.TypeMessage, User: "bot", Text: fmt.Sprint(i, text)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range recvN(t, sub, total) {
		if ev.Text != fmt.Sprint(i, text) {
			t.Fatalf("event %d out of order", i)
		}
	}
}

func TestTokenIsSentOnEveryTransport(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	s := startServer(t, server.Config{AuthSecret: secret}, nil)
	tok, err := server.MintToken(secret, "carol", server.Claims{Rooms: []string{"lobby"}, Publish: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, "", client.WithToken(tok))
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			sub := subscribe(t, c, client.Room("lobby"), tc.opts)
			waitState(t, sub, connectedWith(tc.want))
			want := publish(t, c, "lobby", "with a token")
			got := recv(t, sub)
			sameEvent(t, got, *want)
			if got.User != "carol" {
				t.Fatalf("user %q, want the token's carol", got.User)
			}
		})
	}

	anon := newClient(t, s, "")
	sub := subscribe(t, anon, client.Room("lobby"), client.SubscribeOptions{})
	<-sub.Done()
	var pe *protocol.Error
	if err := sub.Err(); !errors.As(err, &pe) || pe.Code != protocol.CodeUnauthorized {
		t.Fatalf("without a token: Err() = %v, want unauthorized", err)
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
	secret := []byte("0123456789abcdef0123456789abcdef")
	var ws, sse, poll atomic.Int64
	s := startServer(t, server.Config{AuthSecret: secret}, countTransports(&ws, &sse, &poll))
	carol, err := server.MintToken(secret, "carol", server.Claims{Rooms: []string{"lobby"}, Publish: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := server.MintToken([]byte("not-this-servers-secret-at-all!!"), "carol", server.Claims{Rooms: []string{"lobby"}, Publish: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
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
				var states stateLog
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
	s := startServer(t, server.Config{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpgrade(r) {
				http.Error(w, "<html>Forbidden by policy</html>", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	c := newClient(t, s, "alice")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Since: "0"})
	waitState(t, sub, connectedWith(client.TransportSSE))
	want := publish(t, c, "lobby", "past the proxy")
	sameEvent(t, recv(t, sub), *want)
}
