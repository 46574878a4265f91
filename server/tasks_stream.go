package server

import (
	"context"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
)

// taskStream is the tasks stream as the task runner reaches it: it
// publishes through the hub, like any publisher, and reads from the store.
type taskStream struct {
	hub      *Hub
	store    Store
	watchers *taskWatchers
}

var _ tasks.Stream = taskStream{}

// taskStreamPage is how many events Latest reads from the store at once.
const taskStreamPage = 1024

// Publish implements tasks.Stream.
func (s taskStream) Publish(ctx context.Context, ev protocol.Event) error {
	_, err := s.hub.Publish(ctx, protocol.TasksStream, ev)
	return err
}

// Latest implements tasks.Stream, reading the store a page at a time.
func (s taskStream) Latest(ctx context.Context, n int, fn func(protocol.Event)) error {
	info, err := s.store.Info(ctx, protocol.TasksStream)
	if err != nil {
		return err
	}
	after := info.First - 1
	if n >= 0 && info.Last > uint64(n) {
		after = max(after, info.Last-uint64(n))
	}
	for after < info.Last {
		events, _, err := s.store.Read(ctx, protocol.TasksStream, after, taskStreamPage)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		for _, ev := range events {
			fn(ev)
			after = ev.Seq
		}
	}
	return nil
}

// LastWatched implements tasks.Stream from the server's count of
// subscriptions to tasks.
func (s taskStream) LastWatched(t protocol.Task) time.Time {
	return s.watchers.lastWatched(t)
}
