package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

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

// A SIGTERM with thousands of tasks queued ends within --shutdown-timeout
// and a second: the queued tasks are cancelled together, and after a
// restart each is cancelled, "server shutting down".
func TestShutdownWithAQueueEndsInTime(t *testing.T) {
	const queued, timeout = 2000, 20 * time.Second
	data := t.TempDir()
	args := []string{"--data", data, "--max-tasks", "1", "--max-queued-tasks", "3000", "--task-rate", "0", "--keep-tasks", "5000",
		"--shutdown-timeout", timeout.String()}
	p := startPushd(t, args...)
	p.StartTask(t, `{"kind":"demo","name":"runs","total":1000,"interval":"1h"}`)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				p.StartTask(pushdtest.GoTB{TB: t}, fmt.Sprintf(`{"kind":"demo","name":"queued %d","total":1,"interval":"1ms"}`, i))
			}
		})
	}
	for i := range queued {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if n, err := p.Metric(t, `pushd_tasks{state="queued"}`); err != nil || n != queued {
		t.Fatalf("queued tasks: %v %v; want %d", n, err, queued)
	}

	start := time.Now()
	p.Signal(t, syscall.SIGTERM)
	err := p.Wait(t)
	took := time.Since(start)
	t.Logf("SIGTERM with %d queued: exit %v after %s", queued, err, took.Round(time.Millisecond))
	if took > timeout+time.Second {
		t.Fatalf("SIGTERM with %d tasks queued took %s; want at most --shutdown-timeout %s and a second", queued, took, timeout)
	}
	if err != nil {
		t.Fatalf("pushd exited with %v; want 0", err)
	}

	p = startPushd(t, args...)
	var list protocol.TaskList
	p.Expect(t, http.MethodGet, "/v1/tasks", "", http.StatusOK, &list)
	cancelled := 0
	for _, tk := range list.Tasks {
		if tk.State == protocol.TaskCancelled && tk.Message == "server shutting down" {
			cancelled++
		}
	}
	if len(list.Tasks) != queued+1 || cancelled != queued+1 {
		t.Fatalf("after the restart: %d tasks, %d cancelled by the shutdown; want all %d", len(list.Tasks), cancelled, queued+1)
	}
}

// A clean shutdown of a server on NATS says nothing about a lost NATS
// connection, and nothing at all after "stopped" but what closing the
// connection quietly leaves: no warning or error.
func TestNATSShutdownIsQuiet(t *testing.T) {
	ns := natstest.Start(t)
	p := startPushd(t, "--nats", ns.URL())
	p.Publish(t, "lobby", "tester", "hi")
	p.Signal(t, syscall.SIGTERM)
	if err := p.Wait(t); err != nil {
		t.Fatalf("pushd exited with %v; want 0", err)
	}
	log := p.Log()
	i := strings.Index(log, `msg=stopped`)
	if i < 0 {
		t.Fatalf("no \"stopped\" in the log:\n%s", log)
	}
	if strings.Contains(log, "lost NATS connection") {
		t.Errorf("a clean shutdown logged a lost NATS connection:\n%s", log)
	}
	for _, line := range strings.Split(strings.TrimSpace(log[i:]), "\n")[1:] {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("after \"stopped\": %s", line)
		}
	}
}
