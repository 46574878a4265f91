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
// the model follows, a change of a subscription's connection state, or
// where a room's events begin. Exactly one of Event, Status and Backlog
// is set.
type Update struct {
	Event   *protocol.Event
	Status  *Status
	Backlog *Backlog
}

// Backlog says where the events of a room that follow begin: sent when
// its subscription starts, and again when it starts over after a reset,
// before the events it announces.
type Backlog struct {
	// Stream is the room's stream ("room/lobby").
	Stream string
	// Head is where the room stood when its subscription started: the
	// events up to it are history, those after it are live.
	Head protocol.Cursor
	// Resumed: the user was in the room before, and left it at Last;
	// Missed events (up to Head) came since. The events that follow may
	// begin a little before Last, to show what was said before.
	Resumed bool
	Last    protocol.Cursor
	Missed  int
	// Skipped events before those that follow are not sent (more were
	// missed than are shown, or a reset would replay the whole log); they
	// can be read backwards.
	Skipped int
	// Reset, when set, is the reason the room's history began anew since
	// the user was last here (a reset while away).
	Reset string
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
