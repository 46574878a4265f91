package pushdtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// Watcher reads a stream in the background and keeps what it sees, until
// the stream ends or the watcher is stopped.
type Watcher struct {
	sub    *Subscriber
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	events []protocol.Event
	ended  bool
	end    string // how, as Ended says
}

var watchers atomic.Int64

// Watch starts a Watcher of a stream's events path over kind. A
// WebSocket or SSE watcher is subscribed when Watch returns; a polling one
// polls continually, its requests named (Name) so that Server.Entered
// counts them. It stops when the test ends.
func (s *Remote) Watch(t testing.TB, kind, path string, o SubOptions) *Watcher {
	t.Helper()
	if o.Name == "" {
		o.Name = fmt.Sprintf("%s-%d", kind, watchers.Add(1))
	}
	sub := s.Subscribe(t, kind, path, o)
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{sub: sub, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	t.Cleanup(w.Stop)
	return w
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	defer w.sub.Close()
	for {
		ev, err := w.sub.Read(ctx)
		if err != nil {
			var ended *Ended
			var refused *RefusedError
			switch {
			case ctx.Err() != nil:
				w.finish("stopped")
			case errors.As(err, &ended):
				w.finish(ended.How)
			case errors.As(err, &refused):
				w.finish(refused.Error())
			default:
				w.finish(err.Error())
			}
			return
		}
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
	}
}

func (w *Watcher) finish(how string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.ended, w.end = true, how
	}
}

// Name returns the name the watcher's polls carry.
func (w *Watcher) Name() string { return w.sub.o.Name }

// Polls returns how many poll answers a polling watcher has had.
func (w *Watcher) Polls() int { return w.sub.Polls() }

// Stop ends the watcher and waits for it.
func (w *Watcher) Stop() {
	w.cancel()
	<-w.done
}

// Seen returns a copy of the events so far, whether the stream ended,
// and how.
func (w *Watcher) Seen() ([]protocol.Event, bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]protocol.Event(nil), w.events...), w.ended, w.end
}

// WaitFor waits until cond holds for the events seen so far and returns
// them. It fails the test if the stream ends first.
func (w *Watcher) WaitFor(t testing.TB, what string, cond func([]protocol.Event) bool) []protocol.Event {
	t.Helper()
	var evs []protocol.Event
	testwait.Until(t, Timeout, 2*time.Millisecond, func() error {
		seen, ended, end := w.Seen()
		evs = seen
		switch {
		case cond(seen):
			return nil
		case ended:
			t.Fatalf("%s watcher: the stream ended (%s) before %s; it saw %s", w.sub.kind, end, what, Summary(seen))
		}
		return fmt.Errorf("%s watcher: no %s; it saw %s", w.sub.kind, what, Summary(seen))
	})
	return evs
}

// WaitEnded waits for the stream to end and returns what was seen and
// how it ended.
func (w *Watcher) WaitEnded(t testing.TB) ([]protocol.Event, string) {
	t.Helper()
	var evs []protocol.Event
	var end string
	testwait.Until(t, Timeout, 2*time.Millisecond, func() error {
		seen, ended, how := w.Seen()
		evs, end = seen, how
		if !ended {
			return fmt.Errorf("%s watcher: the stream has not ended; it saw %s", w.sub.kind, Summary(seen))
		}
		return nil
	})
	return evs, end
}

// WaitInFlight waits until cond holds for the events seen so far and the
// watcher is subscribed after them: its WebSocket or SSE stream is open,
// or a poll made after them has reached the server.
func (w *Watcher) WaitInFlight(t testing.TB, what string, cond func([]protocol.Event) bool) {
	t.Helper()
	testwait.Until(t, Timeout, 2*time.Millisecond, func() error {
		seen, ended, end := w.Seen()
		polls := w.Polls() // read after the events: every poll they came in is counted
		switch {
		case ended:
			t.Fatalf("%s watcher: the stream ended (%s) before %s; it saw %s", w.sub.kind, end, what, Summary(seen))
		case !cond(seen):
			return fmt.Errorf("%s watcher: no %s; it saw %s", w.sub.kind, what, Summary(seen))
		case w.sub.kind != LongPoll && w.sub.kind != ShortPoll:
		case w.sub.s.entered == nil:
			t.Fatalf("%s watcher: whether a poll has reached the server cannot be seen from outside it", w.sub.kind)
		case w.sub.s.entered(w.Name()) <= polls:
			return fmt.Errorf("%s watcher: %s seen, and no poll after it at the server yet", w.sub.kind, what)
		}
		return nil
	})
}
