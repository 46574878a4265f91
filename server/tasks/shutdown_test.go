package tasks_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
)

// gatedStream is a tasks stream whose publishes of "server shutting
// down" wait until the gate opens, as a store that is slow to answer
// would make them.
type gatedStream struct {
	memStream
	gate chan struct{}
	once sync.Once
}

func (s *gatedStream) Publish(ctx context.Context, ev protocol.Event) error {
	if ev.Task != nil && ev.Task.Message == tasks.ErrShutdown.Error() {
		<-s.gate
	}
	return s.memStream.Publish(ctx, ev)
}

func (s *gatedStream) open() { s.once.Do(func() { close(s.gate) }) }

// A shutdown with a queue ends by its context, even when the stream takes
// longer than that: it does not wait for the writes under way.
func TestShutdownEndsByItsContext(t *testing.T) {
	stream := &gatedStream{gate: make(chan struct{})}
	t.Cleanup(stream.open)
	r, err := tasks.New(context.Background(), stream, tasks.Config{MaxRunning: 1, MaxQueued: 1000}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 600 {
		if _, _, err := r.Start(t.Context(), tasks.Spec{Kind: "demo", Params: []byte(`{"total":1000,"interval":"1h"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	const within = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	start := time.Now()
	err = r.Shutdown(ctx)
	if took := time.Since(start); took > within+time.Second {
		t.Fatalf("Shutdown with its writes stuck took %s; want its context's %s and at most a second", took, within)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with its writes stuck: %v; want the context's deadline", err)
	}
	if _, _, err := r.Start(t.Context(), tasks.Spec{Kind: "demo"}); !errors.Is(err, tasks.ErrShutdown) {
		t.Fatalf("a start after the shutdown: %v; want ErrShutdown", err)
	}
}

// A shutdown cancels a large queue at once: every queued task ends
// cancelled, "server shutting down".
func TestShutdownCancelsTheQueue(t *testing.T) {
	const queued = 1500
	stream := &memStream{}
	r, err := tasks.New(context.Background(), stream, tasks.Config{MaxRunning: 1, MaxQueued: queued, KeepFinished: queued + 1}, newMemStore(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range queued + 1 {
		task, _, err := r.Start(t.Context(), tasks.Spec{Kind: "demo", Params: []byte(`{"total":1000,"interval":"1h"}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	shutdown(t, r)
	for _, id := range ids {
		task, err := r.Get(id)
		if err != nil || task.State != protocol.TaskCancelled || task.Message != tasks.ErrShutdown.Error() {
			t.Fatalf("task %s after the shutdown: %+v %v; want cancelled, server shutting down", id, task, err)
		}
	}
}
