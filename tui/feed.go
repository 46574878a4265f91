package tui

import (
	"errors"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// ErrClosed is the result of a screen whose updates channel closed (the
// connection ended for good) before it was done.
var ErrClosed = errors.New("the connection to the server closed")

// Update is one thing that happened on a connection: an event of a stream
// the model follows, or a change of a subscription's connection state.
// Exactly one of Event and Status is set.
type Update struct {
	Event  *protocol.Event
	Status *Status
}

// Status is a change of a subscription's connection state.
type Status struct {
	// Stream is the subscription's stream ("room/lobby", "tasks").
	Stream string
	// State is where the connection is now.
	State client.ConnState
	// Transport is the transport in use (connected) or being tried.
	Transport string
	// Attempt is the number of the coming try (reconnecting), from 1.
	Attempt int
	// RetryIn is the wait before that try (reconnecting).
	RetryIn time.Duration
	// Err says why the connection dropped or closed.
	Err error
}

// updatesMsg carries every update that was queued when the feed command
// ran, oldest first, so a burst is applied as one Update.
type updatesMsg struct {
	Updates []Update
	// Closed is set when the channel was closed after these updates.
	Closed bool
}

// maxBatch bounds one updatesMsg, so a flood still lets keys through.
const maxBatch = 4096

// waitForUpdates returns a command that waits for the next update on ch,
// then takes whatever else is already queued (up to maxBatch) without
// waiting, and returns them as one updatesMsg. The model runs it again after
// each updatesMsg that is not Closed. A nil channel never delivers.
func waitForUpdates(ch <-chan Update) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		u, ok := <-ch
		if !ok {
			return updatesMsg{Closed: true}
		}
		batch := []Update{u}
		for len(batch) < maxBatch {
			select {
			case u, ok := <-ch:
				if !ok {
					return updatesMsg{Updates: batch, Closed: true}
				}
				batch = append(batch, u)
			default:
				return updatesMsg{Updates: batch}
			}
		}
		return updatesMsg{Updates: batch}
	}
}

// dedupe drops events a model has already applied: it remembers the cursor
// of the last event per stream and lets through only events after it in the
// same epoch, or events of a new epoch. The client already resumes without
// duplicates; this keeps the screen right even if a transport repeats one.
type dedupe map[string]protocol.Cursor

// fresh reports whether e is new, and remembers it if so.
func (d dedupe) fresh(e *protocol.Event) bool {
	last, seen := d[e.Stream]
	if seen && e.Type != protocol.TypeReset && e.Epoch == last.Epoch && e.Seq <= last.Seq {
		return false
	}
	d[e.Stream] = e.Cursor()
	return true
}
