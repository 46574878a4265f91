package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// plainTime is the time format of plain lines: UTC, milliseconds.
const plainTime = "2006-01-02T15:04:05.000Z07:00"

// PlainEvent formats an event as one line for scripts (--plain): the time,
// the stream, the type, then by type:
//
//	message  <user> <text>
//	login    <user>
//	logout   <user>
//	reset    <reason>
//	progress <id> <state> <done>/<total> <percent>% <name>[: <message>]
//
// Text is on one line: a message's line breaks are written as the two
// characters \n, other control characters as spaces. --json gives the
// event exactly instead.
func PlainEvent(e *protocol.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.UTC().Format(plainTime))
	b.WriteByte(' ')
	b.WriteString(e.Stream)
	b.WriteByte(' ')
	b.WriteString(string(e.Type))
	switch e.Type {
	case protocol.TypeMessage:
		fmt.Fprintf(&b, " %s %s", clean(e.User, false), clean(strings.ReplaceAll(e.Text, "\n", `\n`), false))
	case protocol.TypeLogin, protocol.TypeLogout:
		fmt.Fprintf(&b, " %s", clean(e.User, false))
	case protocol.TypeReset:
		fmt.Fprintf(&b, " %s", e.Reason)
	case protocol.TypeProgress:
		if e.Task != nil {
			b.WriteByte(' ')
			b.WriteString(PlainTask(e.Task))
		}
	default:
		if e.User != "" {
			fmt.Fprintf(&b, " %s", clean(e.User, false))
		}
		if e.Text != "" {
			fmt.Fprintf(&b, " %s", clean(e.Text, false))
		}
	}
	return b.String()
}

// PlainTask formats a task on one line: "<id> <state> <done>/<total>
// <percent>% <name>[: <message>]".
func PlainTask(t *protocol.Task) string {
	v := TaskView{Task: *t}
	s := fmt.Sprintf("%s %s %s %d%% %s", t.ID, t.State, fmtCount(t.Done, t.Total), int(math.Floor(v.Fraction()*100)), clean(t.Name, false))
	if t.Message != "" {
		s += ": " + clean(t.Message, false)
	}
	return s
}

// PlainStatus formats a connection state change for people reading a
// script's standard error: "connected to room/lobby over ws",
// "reconnecting to tasks in 2s (try 3): <why>".
func PlainStatus(s *Status) string {
	switch s.State {
	case client.StateConnecting:
		return fmt.Sprintf("connecting to %s over %s", s.Stream, s.Transport)
	case client.StateConnected:
		return fmt.Sprintf("connected to %s over %s", s.Stream, s.Transport)
	case client.StateReconnecting:
		line := fmt.Sprintf("reconnecting to %s in %s", s.Stream, s.RetryIn.Round(100*time.Millisecond))
		if s.Attempt > 0 {
			line += fmt.Sprintf(" (try %d)", s.Attempt)
		}
		if s.Err != nil {
			line += ": " + errText(s.Err)
		}
		return line
	case client.StateClosed:
		return fmt.Sprintf("%s closed: %s", s.Stream, errText(s.Err))
	}
	return fmt.Sprintf("%s: %s", s.Stream, s.State)
}
