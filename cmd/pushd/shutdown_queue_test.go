package main

import (
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

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
