package tasks

import (
	"context"
	"time"

	"github.com/pushd/push/protocol"
)

// Stream is the tasks stream (protocol.TasksStream) as the runner reaches
// it: every change of a task goes out on it as a progress event, and when
// the runner starts it reads back the latest ones to find what watchers
// last saw of the tasks a restart interrupted. The server's hub and event
// store are one.
type Stream interface {
	// Publish appends ev to the tasks stream; when it returns nil the
	// event is stored and every subscriber will receive it. It is never
	// refused for a limit meant for clients.
	Publish(ctx context.Context, ev protocol.Event) error
	// Latest calls fn with each of the stream's latest n events (fewer if
	// it holds fewer), oldest first. An error may come after some events.
	Latest(ctx context.Context, n int, fn func(protocol.Event)) error
	// LastWatched returns when t was last watched on this server, for
	// tasks started with Spec.CancelUnwatched: now, or a moment to come
	// (a long poll counts for a while after it ends), while a subscription
	// that may see t is open; else when the last one closed; zero if
	// none ever was. It must not block.
	LastWatched(t protocol.Task) time.Time
}
