package main

import (
	"context"
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
