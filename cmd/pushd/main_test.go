package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

// The test binary doubles as pushd (pushdtest.ProgramCommand), so tests
// can kill a real server process with SIGKILL and start it again.
func TestMain(m *testing.M) {
	pushdtest.AsProgram("pushd", func() int {
		main()
		return 0
	})
	code := m.Run()
	pushdtest.RemoveBuilt() // pushd top's test runs a built pushd in tmux
	os.Exit(code)
}

// startPushd starts pushd serve (this test binary, as pushd) on a free
// loopback port with args and waits until it listens.
func startPushd(t *testing.T, args ...string) *pushdtest.Process {
	t.Helper()
	return pushdtest.StartProcess(t, pushdtest.ProgramCommand(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...))
}

func TestKillNineKeepsAcknowledgedEvents(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data, "--publish-rate", "0")
	var acked []protocol.Event
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 15 {
				ev := p.Publish(t, "durable", "tester", fmt.Sprintf("w%d-%d", w, i))
				mu.Lock()
				acked = append(acked, ev)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	old, _ := p.Poll(t, "/v1/rooms/durable/events", "since=0&wait=0")
	p.Kill(t)

	p = startPushd(t, "--data", data, "--publish-rate", "0")
	after, _ := p.Poll(t, "/v1/rooms/durable/events", "since=0&wait=0")
	if len(after) != len(acked) {
		t.Fatalf("after SIGKILL and restart: %d events, want the %d acknowledged", len(after), len(acked))
	}
	bySeq := map[uint64]string{}
	for _, ev := range acked {
		bySeq[ev.Seq] = ev.Text
	}
	for i, ev := range after {
		if ev.Seq != uint64(i+1) || ev.Text != bySeq[ev.Seq] || ev.Epoch != acked[0].Epoch {
			t.Fatalf("event %d after restart = %+v; want seq %d %q in epoch %s", i, ev, i+1, bySeq[uint64(i+1)], acked[0].Epoch)
		}
	}
	// A client resumes with a cursor from before the crash: no reset, the rest in order.
	mid := old[9].Cursor().String()
	resumed, _ := p.Poll(t, "/v1/rooms/durable/events", "wait=0&since="+mid)
	if len(resumed) != len(acked)-10 || resumed[0].Type == protocol.TypeReset || resumed[0].Seq != 11 {
		t.Fatalf("resume from %s: %d events starting %+v; want %d from seq 11 without a reset", mid, len(resumed), resumed[0], len(acked)-10)
	}
}

func TestGracefulShutdownTellsClientsToReconnect(t *testing.T) {
	p := startPushd(t, "--store", "memory")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws := p.DialWS(t, "/v1/rooms/lobby/events", nil)
	sse := p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{}) // open: its retry: frame came

	p.Signal(t, syscall.SIGTERM)
	_, _, err := ws.Read(ctx)
	if code := websocket.CloseStatus(err); code != protocol.CloseCodeServiceRestart {
		t.Fatalf("WebSocket read after SIGTERM: %v; want close code 1012", err)
	}
	var ended *pushdtest.Ended
	if _, err := sse.Read(ctx); !errors.As(err, &ended) || ended.How != "sse close "+protocol.CloseShutdown {
		t.Fatalf("SSE after SIGTERM: %v; want a close event with reason %s", err, protocol.CloseShutdown)
	}
	if err := p.Wait(t); err != nil {
		t.Fatalf("pushd exited with %v after SIGTERM; want 0", err)
	}
}

func TestServeFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--store", "nope"}, 2, `--store "nope"`},
		{[]string{"serve", "--log-level", "loud"}, 2, `--log-level "loud"`},
		{[]string{"serve", "--history", "0", "--store", "memory"}, 2, "--history 0"},
		{[]string{"serve", "--addr", "256.0.0.1:1", "--store", "memory", "--insecure-open"}, 2, `--addr "256.0.0.1:1"`},
		{[]string{"serve", "extra"}, 2, "unknown command"},
		{[]string{"serve", "--addr", "0.0.0.0:0", "--store", "memory"}, 2, "refusing to listen on 0.0.0.0:0 without authentication"},
		{[]string{"serve", "--auth-secret", "short", "--store", "memory"}, 2, "at least 16 bytes"},
		{[]string{"serve", "--store", "nats"}, 2, "--store nats needs --nats URL"},
		{[]string{"serve", "--store", "memory", "--nats", "nats://127.0.0.1:4222"}, 2, "with --nats the store is NATS JetStream"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-replicas", "7"}, 2, "--nats-replicas 7"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-timeout", "1s"}, 1, "connect to NATS at nats://127.0.0.1:1"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-prefix", "a.b"}, 2, `prefix "a.b"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := execute(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("pushd %v: exit %d, %q; want exit %d and an error mentioning %q", tc.args, code, stderr, tc.code, tc.want)
			}
		})
	}
}
