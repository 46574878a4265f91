package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushd/push/bench"
)

// pushd bench drives the floor server as it drives pushd: every subscriber
// gets every message once and in order, over WebSocket and over SSE.
func TestBenchAgainstFloor(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tr := range []bench.Transport{bench.WebSocket, bench.SSE} {
		t.Run(string(tr), func(t *testing.T) {
			srv := httptest.NewServer(newServer(2))
			defer srv.Close()
			o := bench.DefaultOptions()
			o.Targets = []string{srv.URL}
			o.Transport = tr
			o.Subscribers = 30
			o.Messages = 60
			o.Timeout = time.Minute
			rep, err := bench.Run(context.Background(), o)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if err := rep.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if want := int64(o.Subscribers * o.Messages); rep.Deliveries != want {
				t.Fatalf("%d deliveries, want %d", rep.Deliveries, want)
			}
		})
	}
}

// A body that is not a JSON message is refused with 400 and publishes
// nothing.
func TestFloorRefusesABadBody(t *testing.T) {
	s := newServer(1)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/rooms/r/messages", strings.NewReader("not json"))
	s.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Fatalf("status %d, want 400", rec.Code)
	}
	if seq := s.room("r").seq; seq != 0 {
		t.Fatalf("seq %d after a refused publish, want 0", seq)
	}
}

// A subscriber that stops reading is dropped once a write to it times out,
// and the room goes on: a publish after it is answered. A long poll is
// refused: floor has none.
func TestFloorDropsAStalledSubscriber(t *testing.T) {
	s := newServer(1)
	s.writeTimeout = 200 * time.Millisecond
	srv := httptest.NewServer(s)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/rooms/r/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Wait for the head: the subscriber is in the room then.
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	rm := s.room("r")
	// The client reads nothing: large messages fill its socket, and the
	// write times out.
	body := `{"user":"u","text":"` + strings.Repeat("x", 60000) + `"}`
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("1000 publishes of 60 KB and the subscriber that reads nothing is still in the room")
		}
		resp, err := client.Post(srv.URL+"/v1/rooms/r/messages", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("publish: status %d", resp.StatusCode)
		}
		rm.mu.Lock()
		n := len(rm.subs)
		rm.mu.Unlock()
		if n == 0 {
			break
		}
	}
	resp, err := client.Get(srv.URL + "/v1/rooms/r/events?wait=25s")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("long poll: status %d, want 400", resp.StatusCode)
	}
}
