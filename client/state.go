package client

import (
	"fmt"
	"time"
)

// ConnState is where a subscription's connection is.
type ConnState int

// Connection states, in the order a subscription usually goes through them.
const (
	// StateConnecting: a transport is being tried (StateChange.Transport).
	StateConnecting ConnState = iota
	// StateConnected: the server accepted the subscription over
	// StateChange.Transport; events flow.
	StateConnected
	// StateReconnecting: the connection failed or dropped (StateChange.Err
	// says why); try StateChange.Attempt comes after StateChange.RetryIn.
	// Nothing is lost: the subscription resumes from its cursor.
	StateReconnecting
	// StateClosed: the subscription ended for good; StateChange.Err is
	// why (nil after Close, and when the server ended the stream, as one
	// task's stream ends after the task's final event). It is always the
	// last state reported.
	StateClosed
)

// String names the state: "connecting", "connected", "reconnecting",
// "closed".
func (s ConnState) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// StateChange is a change of a subscription's connection state.
type StateChange struct {
	State ConnState
	// Transport is the transport being tried (connecting), in use
	// (connected), or to be tried next (reconnecting).
	Transport Transport
	// Attempt is the number of the coming try since the last connection
	// that worked, from 1 (reconnecting).
	Attempt int
	// RetryIn is the wait before that try (reconnecting).
	RetryIn time.Duration
	// Err is why the connection dropped (reconnecting) or the
	// subscription ended (closed).
	Err error
}

// emit reports a state change to OnState and States.
func (s *Subscription) emit(sc StateChange) {
	if sc.State == StateConnected {
		s.mu.Lock()
		s.transport = sc.Transport
		s.mu.Unlock()
	}
	if s.opts.OnState != nil {
		s.opts.OnState(sc)
	}
	// Only this goroutine sends, so after taking one out there is room.
	select {
	case s.states <- sc:
	default:
		select {
		case <-s.states:
		default:
		}
		s.states <- sc
	}
}
