package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/server"
)

func TestMetricsAndReadiness(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})

	if status, _ := call(t, s, "GET", "/readyz", "", ""); status != 200 {
		t.Fatalf("readyz: %d", status)
	}
	for range 2 {
		if status, _ := call(t, s, "POST", "/v1/rooms/lobby/messages", "", `{"user":"a","text":"hi"}`); status != 201 {
			t.Fatalf("publish: %d", status)
		}
	}
	if status, _ := call(t, s, "GET", "/v1/rooms/lobby/events?since=0&wait=0", "", ""); status != 200 {
		t.Fatalf("poll: %d", status)
	}
	call(t, s, "POST", "/v1/rooms/lobby/messages", "", `{"user":"a","text":""}`)
	call(t, s, "POST", "/v1/tasks", "", `{"kind":"nope"}`)

	text := string(s.Get(t, "/metrics").Body)
	for _, want := range []string{
		"pushd_events_published_total 2",
		`pushd_events_delivered_total{transport="longpoll"} 2`,
		`pushd_requests_rejected_total{reason="empty_text"} 1`,
		`pushd_requests_rejected_total{reason="invalid_param"} 1`,
		`pushd_connections{transport="ws"} 0`,
		"pushd_delivery_latency_seconds_count 1",
		`pushd_tasks{state="running"} 0`,
		"pushd_slow_consumer_drops_total 0",
		"pushd_streams 1", // the room; the failed task start opened no stream
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := s.Srv().Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, code := call(t, s, "GET", "/readyz", "", ""); status != 503 || code != "unavailable" {
		t.Fatalf("readyz during shutdown: %d %s; want 503 unavailable", status, code)
	}
}
