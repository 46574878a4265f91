package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// Shutdown tells every subscriber to reconnect (WebSocket close 1012, SSE
// close event, an answer to a waiting long poll), waits for them, and
// returns; new subscriptions are refused meanwhile.
func TestShutdownTellsSubscribersToReconnect(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	last := p.Publish(t, "lobby", "alice", "before")
	ws := p.DialWS(t, "/v1/rooms/lobby/events?user=alice", nil)
	sse := p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: last.Cursor().String(), User: "bob"})
	// Both logins are in before the poll starts, so it waits.
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		if got := p.Presence(t, "lobby"); len(got) != 2 {
			return errors.New("alice and bob not both present yet")
		}
		return nil
	})
	head := p.Head(t, pushdtest.RoomPath("lobby"))
	polling := p.PollAsync(t, pushdtest.RoomPath("lobby"), "wait=25s&since="+head.String())
	p.WaitConnections(t, "longpoll", 1)

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
		defer cancel()
		shutdownDone <- p.Srv().Shutdown(ctx)
	}()

	// The WebSocket gets the two logins, then close 1012 server_shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
	defer cancel()
	var closeErr error
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			closeErr = err
			break
		}
		pushdtest.CheckEvent(t, msg)
	}
	if code := websocket.CloseStatus(closeErr); code != protocol.CloseCodeServiceRestart {
		t.Fatalf("WebSocket ended with %v; want close %d", closeErr, protocol.CloseCodeServiceRestart)
	}
	var ce websocket.CloseError
	if errors.As(closeErr, &ce); ce.Reason != protocol.CloseShutdown {
		t.Fatalf("WebSocket close reason %q; want %q", ce.Reason, protocol.CloseShutdown)
	}

	// SSE: the two logins (in either order: a WebSocket joins presence
	// once its upgrade is done, so alice's may follow bob's), then a close
	// frame without an id.
	logins := map[string]bool{}
	for range 2 {
		ev := sse.Next(t)
		if ev.Type != protocol.TypeLogin || (ev.User != "alice" && ev.User != "bob") || logins[ev.User] {
			t.Fatalf("SSE got %s; want alice's and bob's logins", pushdtest.OneLine(ev))
		}
		logins[ev.User] = true
	}
	var f pushdtest.SSEFrame
	for {
		if f = sse.SSE().Frame(t); len(f.Comments) == 0 {
			break
		}
	}
	var body struct{ Reason, Message string }
	if err := json.Unmarshal([]byte(f.Data), &body); f.Event != "close" || f.HasID || err != nil ||
		body.Reason != protocol.CloseShutdown || body.Message == "" {
		t.Fatalf("SSE frame %+v at shutdown; want event: close with reason %s and no id", f, protocol.CloseShutdown)
	}

	// The long poll is answered: no events, the cursor where it was.
	polled, _ := testwait.Recv(t, pushdtest.Timeout, polling, "answer of the waiting long poll")
	if len(polled.Events) != 0 || polled.Cursor != head.String() {
		t.Fatalf("long poll at shutdown: %s, cursor %s; want none and %s", pushdtest.Summary(polled.Events), polled.Cursor, head)
	}

	if err, _ := testwait.Recv(t, pushdtest.Timeout, shutdownDone, "return from Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	// New subscriptions are refused with 503 while the server stops.
	p.Get(t, "/v1/rooms/lobby/events?wait=1s").WantError(t, http.StatusServiceUnavailable, protocol.CodeUnavailable)
}

// Shutdown with nobody connected returns at once, and twice is harmless.
func TestShutdownIdle(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	p.Publish(t, "lobby", "alice", "hi")
	ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
	defer cancel()
	if err := p.Srv().Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Srv().Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// Shutdown gives up when ctx ends before the subscribers have gone, and
// says so.
func TestShutdownHonoursContext(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	// A subscriber whose writes block cannot be told in time; an expired
	// context makes Shutdown return anyway.
	p.DialWS(t, "/v1/rooms/lobby/events", nil)
	p.WaitConnections(t, "ws", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Srv().Shutdown(ctx); err == nil {
		// The subscriber may already have gone; then nil is right.
		if n, _ := p.Connections(t, "ws"); n != 0 {
			t.Fatal("Shutdown with a cancelled context returned nil while a subscriber was still connected")
		}
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v; want it to wrap context.Canceled", err)
	}
}
