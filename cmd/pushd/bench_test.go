package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/bench"
	"github.com/pushd/push/internal/pushdtest"
)

func TestBenchFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--transport", "pigeon"}, `--transport "pigeon": use ws, sse or longpoll`},
		{[]string{"bench", "--subscribers", "0"}, "--subscribers 0: need at least 1"},
		{[]string{"bench", "--messages", "0"}, "--messages 0: need at least 1"},
		{[]string{"bench", "--publishers", "5", "--messages", "4"}, "--publishers 5: more publishers than --messages 4"},
		{[]string{"bench", "--rate", "-1"}, "--rate -1: must not be negative"},
		{[]string{"bench", "--size", "0"}, "--size 0: need at least 1 byte"},
		{[]string{"bench", "--stall", "3", "--subscribers", "2"}, "--stall 3: must be between 0 and --subscribers 2"},
		{[]string{"bench", "--stall", "1", "--stall-for", "0s"}, "--stall-for 0s: must be positive"},
		{[]string{"bench", "--room", "a/b"}, `--room "a/b"`},
		{[]string{"bench", "--target", "127.0.0.1:8080"}, `--target "127.0.0.1:8080": want the server's base URL`},
		{[]string{"bench", "--pid", "1"}, "--pid 1: only with one --target"},
		{[]string{"bench", "--transport", "sse", "--ws-subprotocol", "pushd.batch.v1"}, "--ws-subprotocol pushd.batch.v1: only with --transport ws"},
		{[]string{"bench", "--subscribers", "many"}, `invalid argument "many" for "--subscribers"`},
		{[]string{"bench", "--server-cmd", "pushd serve"}, `--server-cmd "pushd serve": only with one --target`},
		{[]string{"bench", "--target", "http://127.0.0.1:1,http://127.0.0.1:2", "--pid", "1"}, "--pid 1: only with one --target"},
		{[]string{"bench", "--target", "http://127.0.0.1:1", "--target", "127.0.0.1:2"}, `--target "127.0.0.1:2": want the server's base URL`},
		{[]string{"bench", "--restart-after", "5"}, "--restart-after 5: only with --server-cmd"},
		{[]string{"bench", "--target", "http://127.0.0.1:1", "--server-cmd", "pushd serve", "--restart-after", "5", "--messages", "5"}, "--restart-after 5: must be less than --messages 5"},
		{[]string{"bench", "--target", "http://127.0.0.1:1", "--server-cmd", "pushd serve", "--pid", "1"}, "--pid 1: not with --server-cmd"},
		{[]string{"bench", "extra"}, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := execute(t, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("pushd %v: exit %d, %q; want exit 2 and an error mentioning %q", tc.args, code, stderr, tc.want)
			}
		})
	}
}

// A small run through the command prints one JSON line that says every
// message arrived once.
func TestBenchJSON(t *testing.T) {
	var out, progress bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"bench", "--transport", "sse", "--subscribers", "5", "--messages", "20", "--json", "--timeout", "1m"})
	cmd.SetOut(&out)
	cmd.SetErr(&progress)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("pushd bench: %v\n%s", err, progress.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("pushd bench --json printed %d lines, want 1:\n%s", n, out.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("pushd bench --json: %v\n%s", err, out.String())
	}
	if rep.Transport != bench.SSE || rep.Deliveries != 100 || rep.Expected != 100 || rep.Lost != 0 || rep.Duplicates != 0 || rep.OutOfOrder != 0 {
		t.Fatalf("report %+v: want 100 of 100 SSE deliveries, none lost, duplicated or out of order", rep)
	}
	if !strings.Contains(progress.String(), "connecting 5 sse subscribers") {
		t.Fatalf("no progress on stderr:\n%s", progress.String())
	}
}

// A restart in the middle of a run, on the bolt store: the bench starts
// pushd (this test binary), restarts it after a third of the messages,
// and every subscriber comes back to the new process and gets every
// acknowledged message exactly once, in order, the publishes refused
// during the restart included.
func TestBenchRestartLosesNothing(t *testing.T) {
	addr := pushdtest.FreeAddr(t)
	server := pushdtest.ProgramCommand(context.Background(), "serve", "--addr", addr, "--data", t.TempDir(),
		"--publish-rate", "0", "--max-conns-per-ip", "0", "--max-conns-per-user", "0")
	var serverLog, progress bytes.Buffer
	o := bench.DefaultOptions()
	o.Targets = []string{"http://" + addr}
	o.ServerCommand, o.ServerEnv, o.ServerOutput = server.Args, server.Env, &serverLog
	o.Subscribers, o.Messages, o.Publishers, o.Rate, o.RestartAfter = 50, 60, 2, 40, 20
	o.Room = "storm"
	o.Timeout = 2 * time.Minute
	o.Progress = &progress
	rep, err := bench.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("bench: %v\n%s\nserver:\n%s", err, progress.String(), serverLog.String())
	}
	var text strings.Builder
	_ = rep.WriteText(&text)
	t.Logf("\n%s", text.String())
	if err := rep.Check(); err != nil {
		t.Fatalf("Check: %v\n%s", err, progress.String())
	}
	if rep.Deliveries != 50*60 || rep.Resumed != 50 || rep.RestartAfter != 20 || rep.Outage <= 0 {
		t.Fatalf("report %+v: want 3000 deliveries, the 50 subscribers reconnected to the restarted server after 20 messages", rep)
	}
	// The restart ends each subscriber's connection once; the attempts
	// made while the server was away are no reconnects.
	if rep.Reconnects != 50 {
		t.Fatalf("%d reconnects, want 50: one per subscriber, whose connection the restart ended", rep.Reconnects)
	}
	if !strings.Contains(progress.String(), "restarting the server") || !strings.Contains(serverLog.String(), "pushd listening") {
		t.Fatalf("no restart in the progress or the server's log:\n%s\nserver:\n%s", progress.String(), serverLog.String())
	}
}

// Subscribers spread over two nodes of one NATS, publishing on the second
// (--publish-to): every subscriber
// gets every message, and both nodes hold subscribers.
func TestBenchSeveralTargets(t *testing.T) {
	a, b := startPair(t)
	var out, progress bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"bench", "--target", a.URL + "," + b.URL, "--publish-to", b.URL, "--subscribers", "6",
		"--messages", "30", "--room", "spread", "--json", "--timeout", "1m"})
	cmd.SetOut(&out)
	cmd.SetErr(&progress)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("pushd bench: %v\n%s", err, progress.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("pushd bench --json: %v\n%s", err, out.String())
	}
	if rep.Deliveries != 180 || rep.Target != a.URL+","+b.URL {
		t.Fatalf("report %+v: want 180 deliveries from the targets %s,%s", rep, a.URL, b.URL)
	}
	for _, p := range []*pushdtest.Process{a, b} {
		got, err := p.Metric(t, `pushd_events_delivered_total{transport="ws"}`)
		if err != nil || got != 90 {
			t.Errorf("%s delivered %g events (%v); want 90, the 30 messages to each of its 3 subscribers", p.URL, got, err)
		}
	}
}
