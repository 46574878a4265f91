package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/boltstore"
)

// Clients that send a subscribe request and at once close their side must
// never take the server down (the pusher starts with its connection's
// context already ended).
func TestHalfClosedSubscribersDoNotCrashTheServer(t *testing.T) {
	base := limitServer(t, server.Config{})
	addr := strings.TrimPrefix(base, "http://")
	requests := []string{
		"GET /v1/rooms/half/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
		"GET /v1/rooms/half/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	}
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = c.Write([]byte(requests[i%2]))
			_ = c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = bufio.NewReader(c).ReadString('\n')
		}()
	}
	wg.Wait()
	if status, _ := call(t, "POST", base+"/v1/rooms/half/messages", "", `{"user":"u","text":"still up"}`); status != 201 {
		t.Fatalf("publish after the half-closed clients: %d", status)
	}
}

// A WebSocket upgrade over HTTP/1.0 or with two keys is refused with the
// error body, and its ?user= never logs in.
func TestWebSocketHandshakeRefusalsChangeNothing(t *testing.T) {
	base := limitServer(t, server.Config{})
	addr := strings.TrimPrefix(base, "http://")
	for name, req := range map[string]string{
		"http/1.0": "GET /v1/rooms/hs/events?user=alice HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		"two keys": "GET /v1/rooms/hs/events?user=bob HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte(req))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s; want 400 with the JSON error body", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if status, _ := call(t, "GET", base+"/v1/rooms/hs/events?since=0&wait=0", "", ""); status != 200 {
		t.Fatalf("poll: %d", status)
	}
	var p protocol.Poll
	getJSON(t, base+"/v1/rooms/hs/events?since=0&wait=0", &p)
	if len(p.Events) != 0 {
		t.Fatalf("the refused upgrades left %d events (logins?) in the room", len(p.Events))
	}
}

// Two final reports at once: one ends the task, the other gets 409.
func TestConcurrentFinalReports(t *testing.T) {
	base := limitServer(t, server.Config{})
	for range 20 {
		var task protocol.Task
		postJSON(t, base+"/v1/tasks", `{"kind":"external"}`, &task)
		codes := make(chan int, 2)
		for _, state := range []string{"succeeded", "failed"} {
			go func() {
				status, _ := call(t, "POST", base+"/v1/tasks/"+task.ID+"/progress", "", `{"state":"`+state+`"}`)
				codes <- status
			}()
		}
		a, b := <-codes, <-codes
		if min(a, b) != 200 || max(a, b) != 409 {
			t.Fatalf("two final reports answered %d and %d; want 200 and 409", a, b)
		}
	}
}

// A subscription refused by a limit creates no room, so refusals cannot
// use up the room limit; and a publish refused after its rate check costs
// no token.
func TestRefusedRequestsCreateNothing(t *testing.T) {
	base := limitServer(t, server.Config{Limits: server.Limits{ConnsPerIP: 1, MaxStreams: 2, PublishRate: 1, PublishBurst: 1}})
	// One SSE subscription uses the address's only place.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/rooms/one/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/rooms/refused%d/events", base, i), nil)
		req.Header.Set("Accept", "text/event-stream")
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a second subscription: %d; want 429", r2.StatusCode)
		}
	}
	// The refusals made no rooms: a second room can still be made.
	if status, _ := call(t, "POST", base+"/v1/rooms/two/messages", "", `{"user":"u","text":"hi"}`); status != 201 {
		t.Fatalf("publish to a second room: %d; want 201 (refused subscriptions must not use up the room limit)", status)
	}
	// With both rooms in use (a long poll waits in room two), the room
	// limit refuses a third room with 503; that refusal costs no token,
	// so the user may still post at once.
	pollCtx, stopPoll := context.WithCancel(t.Context())
	defer stopPoll()
	polling := make(chan struct{})
	go func() {
		defer close(polling)
		req, _ := http.NewRequestWithContext(pollCtx, http.MethodGet, base+"/v1/rooms/two/events?wait=30s", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	defer func() { stopPoll(); <-polling }()
	waitMetric(t, base, `pushd_connections{transport="longpoll"} 1`)
	if status, code := call(t, "POST", base+"/v1/rooms/three/messages", "", `{"user":"v","text":"hi"}`); status != 503 || code != protocol.CodeUnavailable {
		t.Fatalf("publish to a third room: %d %s; want 503", status, code)
	}
	if status, _ := call(t, "POST", base+"/v1/rooms/two/messages", "", `{"user":"v","text":"hi"}`); status != 201 {
		t.Fatalf("publish after a refused one: %d; want 201 (the refusal cost no token)", status)
	}
}

// After Close the bolt store says so in the Store contract's terms, and a
// request that reaches it gets 503, not 500.
func TestBoltStoreClosedIsUnavailable(t *testing.T) {
	bs, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := bs.Info(ctx, "room/a"); err != nil {
		t.Fatal(err)
	}
	bs.Close()
	if _, err := bs.Append(ctx, "room/a", []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "x"}}); !errors.Is(err, server.ErrStoreClosed) {
		t.Fatalf("Append after Close: %v; want ErrStoreClosed", err)
	}
	if _, _, err := bs.Read(ctx, "room/a", 0, 1); !errors.Is(err, server.ErrStoreClosed) {
		t.Fatalf("Read after Close: %v; want ErrStoreClosed", err)
	}
	srv, err := server.New(server.Config{Store: bs})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	if status, code := call(t, "POST", ts.URL+"/v1/rooms/b/messages", "", `{"user":"u","text":"hi"}`); status != 503 || code != protocol.CodeUnavailable {
		t.Fatalf("publish with the store closed: %d %s; want 503 unavailable", status, code)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func postJSON(t *testing.T, url, body string, v any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
