package client_test

// Tests against hand-written upstreams: small HTTP handlers that send
// exactly the frames a case needs (duplicates, resets, close frames,
// silence), which a healthy pushd would not produce on demand. They stand
// in for the server only; the client under test is the real one.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// upstream is an httptest server whose n-th request (from 0) is answered
// by handlers[n]; later requests block until the client goes away. It
// records each request.
type upstream struct {
	URL string

	mu   sync.Mutex
	reqs []*http.Request
}

func startUpstream(t *testing.T, handlers ...http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		n := len(u.reqs)
		u.reqs = append(u.reqs, r.Clone(context.Background()))
		u.mu.Unlock()
		if n < len(handlers) {
			handlers[n](w, r)
			return
		}
		<-r.Context().Done()
	}))
	t.Cleanup(ts.Close)
	u.URL = ts.URL
	return u
}

// request returns the n-th request, waiting for it.
func (u *upstream) request(t *testing.T, n int) *http.Request {
	t.Helper()
	var r *http.Request
	waitFor(t, func() error {
		u.mu.Lock()
		defer u.mu.Unlock()
		if len(u.reqs) <= n {
			return fmt.Errorf("no request %d yet", n)
		}
		r = u.reqs[n]
		return nil
	})
	return r
}

func upstreamClient(t *testing.T, u *upstream) *client.Client {
	t.Helper()
	c, err := client.New(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// frame is one SSE frame carrying an event.
func frame(epoch string, seq uint64, typ protocol.Type) string {
	return fmt.Sprintf("id: %s:%d\nevent: %s\ndata: {\"seq\":%d,\"epoch\":%q,\"stream\":\"room/r\",\"type\":%q,\"time\":\"2026-01-02T03:04:05Z\"}\n\n",
		epoch, seq, typ, seq, epoch, typ)
}

func sseHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
}

func TestSSEDedupeResetLastEventIDAndClose(t *testing.T) {
	u := startUpstream(t,
		func(w http.ResponseWriter, r *http.Request) {
			sseHeaders(w)
			io.WriteString(w, "retry: 10\n\n")
			io.WriteString(w, frame("A", 1, protocol.TypeMessage))
			io.WriteString(w, frame("A", 2, protocol.TypeMessage))
			io.WriteString(w, frame("A", 2, protocol.TypeMessage)) // duplicate
			io.WriteString(w, frame("A", 1, protocol.TypeMessage)) // older: duplicate
			io.WriteString(w, ": heartbeat\n\n")
			// One event split over several data lines, CRLF line ends.
			io.WriteString(w, "id: A:3\r\nevent: message\r\ndata: {\"seq\":3,\r\ndata: \"epoch\":\"A\",\"type\":\"message\",\r\ndata: \"text\":\"x\"}\r\n\r\n")
			io.WriteString(w, frame("B", 0, protocol.TypeReset))
			io.WriteString(w, frame("B", 1, protocol.TypeMessage))
			// The stream just ends: reconnect.
		},
		func(w http.ResponseWriter, r *http.Request) {
			sseHeaders(w)
			io.WriteString(w, frame("B", 1, protocol.TypeMessage)) // duplicate
			io.WriteString(w, frame("B", 2, protocol.TypeMessage))
			io.WriteString(w, "event: close\ndata: {\"reason\":\"slow_consumer\",\"message\":\"reconnect\"}\n\n")
		},
	)
	c := upstreamClient(t, u)
	var states record[client.StateChange]
	sub := subscribe(t, c, client.Room("r"), client.SubscribeOptions{
		Transport: client.TransportSSE, Since: "0", OnState: states.add,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	})
	want := []string{"A:1", "A:2", "A:3", "reset B:0", "B:1", "B:2"}
	var got []string
	for _, ev := range recvN(t, sub, len(want)) {
		s := ev.Cursor().String()
		if ev.Type == protocol.TypeReset {
			s = "reset " + s
		}
		got = append(got, s)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
	for n, want := range []string{"0", "B:1", "B:2"} {
		r := u.request(t, n)
		if got := r.Header.Get("Last-Event-ID"); got != want {
			t.Fatalf("request %d: Last-Event-ID %q, want %q", n, got, want)
		}
		if got := r.URL.Query().Get("since"); got != want {
			t.Fatalf("request %d: since=%q, want %q", n, got, want)
		}
		if got := r.Header.Get("Accept"); got != "text/event-stream" {
			t.Fatalf("request %d: Accept %q", n, got)
		}
	}
	if !states.has(func(sc client.StateChange) bool {
		return sc.State == client.StateReconnecting && strings.Contains(fmt.Sprint(sc.Err), "slow_consumer")
	}) {
		t.Fatalf("no reconnect for the close event: %+v", states.all())
	}
}

func TestSSEWithoutEventStreamIsRefused(t *testing.T) {
	u := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>a captive portal</html>")
	})
	sub := subscribe(t, upstreamClient(t, u), client.Room("r"), client.SubscribeOptions{Transport: client.TransportSSE, Since: "0"})
	<-sub.Done()
	if err := sub.Err(); err == nil || !strings.Contains(err.Error(), "text/event-stream") {
		t.Fatalf("Err() = %v, want a refusal naming text/event-stream", err)
	}
}

func TestIdleConnectionIsReplaced(t *testing.T) {
	silent := func(w http.ResponseWriter, r *http.Request) {
		sseHeaders(w)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	u := startUpstream(t, silent, silent)
	var states record[client.StateChange]
	sub := subscribe(t, upstreamClient(t, u), client.Room("r"), client.SubscribeOptions{
		Transport: client.TransportSSE, Since: "0", IdleTimeout: 100 * time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, OnState: states.add,
	})
	sc := waitState(t, sub, func(sc client.StateChange) bool { return sc.State == client.StateReconnecting })
	if sc.Err == nil || !strings.Contains(sc.Err.Error(), "nothing from the server") {
		t.Fatalf("reconnecting because of %v, want the idle timeout", sc.Err)
	}
	u.request(t, 1)
}

func TestWebSocketCloseCodes(t *testing.T) {
	send := func(w http.ResponseWriter, r *http.Request, seq uint64, code websocket.StatusCode, reason string) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		msg := fmt.Sprintf(`{"seq":%d,"epoch":"E","stream":"room/r","type":"message","time":"2026-01-02T03:04:05Z","text":"t%d"}`, seq, seq)
		ctx, cancel := context.WithTimeout(r.Context(), waitTimeout)
		defer cancel()
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return
		}
		conn.Close(code, reason)
	}
	u := startUpstream(t,
		func(w http.ResponseWriter, r *http.Request) {
			send(w, r, 1, protocol.CloseCodeSlowConsumer, protocol.CloseSlowConsumer)
		},
		func(w http.ResponseWriter, r *http.Request) {
			send(w, r, 2, protocol.CloseCodeServiceRestart, protocol.CloseShutdown)
		},
		func(w http.ResponseWriter, r *http.Request) {
			send(w, r, 3, websocket.StatusPolicyViolation, "not allowed")
		},
	)
	sub := subscribe(t, upstreamClient(t, u), client.Room("r"), client.SubscribeOptions{
		Transport: client.TransportWebSocket, Since: "0", MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	for i, ev := range recvN(t, sub, 3) {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
	<-sub.Done()
	if err := sub.Err(); err == nil || !strings.Contains(err.Error(), "1008") || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("Err() = %v, want the 1008 close", err)
	}
	if got := u.request(t, 1).URL.Query().Get("since"); got != "E:1" {
		t.Fatalf("second connection since=%q, want E:1", got)
	}
	if got := u.request(t, 2).URL.Query().Get("since"); got != "E:2" {
		t.Fatalf("third connection since=%q, want E:2", got)
	}
}

func TestServerErrorsAreRetriedAndRetryAfterIsHonoured(t *testing.T) {
	unavailable := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"unavailable","message":"try later"}}`)
	}
	tooMany := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
	}
	poll := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"events":[{"seq":1,"epoch":"E","stream":"room/r","type":"message","time":"2026-01-02T03:04:05Z"}],"cursor":"E:1"}`)
	}
	u := startUpstream(t, unavailable, tooMany, poll)
	var states record[client.StateChange]
	sub := subscribe(t, upstreamClient(t, u), client.Room("r"), client.SubscribeOptions{
		Transport: client.TransportLongPoll, Since: "0", MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, OnState: states.add,
	})
	if ev := recv(t, sub); ev.Seq != 1 {
		t.Fatalf("got %+v", ev)
	}
	var codes []string
	var attempts []int
	for _, sc := range states.all() {
		if sc.State == client.StateReconnecting {
			var pe *protocol.Error
			if !errors.As(sc.Err, &pe) {
				t.Fatalf("reconnecting with %v, want a *protocol.Error", sc.Err)
			}
			codes = append(codes, pe.Code)
			attempts = append(attempts, sc.Attempt)
		}
	}
	if fmt.Sprint(codes) != "[unavailable rate_limited]" || fmt.Sprint(attempts) != "[1 2]" {
		t.Fatalf("reconnects for %v, attempts %v; want unavailable then rate_limited, attempts 1 and 2", codes, attempts)
	}
}

func TestAutoFallsBackWhenTheUpgradeIsCutOff(t *testing.T) {
	u := startUpstream(t,
		func(w http.ResponseWriter, r *http.Request) {
			// A proxy that drops the connection of an upgrade request.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		},
		func(w http.ResponseWriter, r *http.Request) {
			sseHeaders(w)
			io.WriteString(w, frame("E", 1, protocol.TypeMessage))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
	)
	sub := subscribe(t, upstreamClient(t, u), client.Room("r"), client.SubscribeOptions{Since: "0"})
	waitState(t, sub, connectedWith(client.TransportSSE))
	if ev := recv(t, sub); ev.Cursor().String() != "E:1" {
		t.Fatalf("got %+v", ev)
	}
	if !isUpgrade(u.request(t, 0)) || !wantsEventStream(u.request(t, 1)) {
		t.Fatal("want an upgrade request, then an event stream request")
	}
}

func TestExplicitWebSocketRetriesAHandshakeCutOff(t *testing.T) {
	cut := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	u := startUpstream(t, cut, func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), waitTimeout)
		defer cancel()
		conn.Write(ctx, websocket.MessageText, []byte(`{"seq":1,"epoch":"E","stream":"room/r","type":"message","time":"2026-01-02T03:04:05Z"}`))
		conn.Read(ctx) // until the client goes
	})
	sub := subscribe(t, upstreamClient(t, u), client.Room("r"), client.SubscribeOptions{
		Transport: client.TransportWebSocket, Since: "0", MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if ev := recv(t, sub); ev.Seq != 1 {
		t.Fatalf("got %+v", ev)
	}
}
