package tui

import (
	"errors"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

func TestPlainEvent(t *testing.T) {
	running := task("t5", "build 42", protocol.TaskRunning, 52, 100, 0)
	running.Message = "step 52\nof 100"
	unnamed := protocol.Task{ID: "t6", State: protocol.TaskRunning, Percent: 12.5}
	cases := []struct {
		name string
		ev   protocol.Event
		want string
	}{
		{"message", protocol.Event{Stream: "room/lobby", Type: protocol.TypeMessage, Time: t0, User: "bob", Text: "hi\nthere\x1b[31m"},
			// A line break is written \n, so the event stays one line.
			"2026-11-23T08:30:00.000Z room/lobby message bob hi\\nthere"},
		{"message with a tab", protocol.Event{Stream: "room/lobby", Type: protocol.TypeMessage, Time: t0, User: "bob", Text: "a\tb\r"},
			"2026-11-23T08:30:00.000Z room/lobby message bob a    b "},
		{"login", protocol.Event{Stream: "room/lobby", Type: protocol.TypeLogin, Time: t0.Add(1500 * time.Millisecond), User: "bob"},
			"2026-11-23T08:30:01.500Z room/lobby login bob"},
		{"logout", protocol.Event{Stream: "room/lobby", Type: protocol.TypeLogout, Time: t0, User: "bob"},
			"2026-11-23T08:30:00.000Z room/lobby logout bob"},
		{"reset", protocol.Event{Stream: "room/lobby", Type: protocol.TypeReset, Time: t0, Reason: "epoch_changed"},
			"2026-11-23T08:30:00.000Z room/lobby reset epoch_changed"},
		{"progress", protocol.Event{Stream: "tasks", Type: protocol.TypeProgress, Time: t0, Task: &running},
			"2026-11-23T08:30:00.000Z tasks progress t5 running 52/100 52% build 42: step 52 of 100"},
		{"progress by percent", protocol.Event{Stream: "tasks", Type: protocol.TypeProgress, Time: t0, Task: &unnamed},
			"2026-11-23T08:30:00.000Z tasks progress t6 running 0 12% "},
		{"unknown type", protocol.Event{Stream: "room/lobby", Type: "wave", Time: t0, User: "bob", Text: "o/"},
			"2026-11-23T08:30:00.000Z room/lobby wave bob o/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := PlainEvent(&tc.ev); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPlainStatus(t *testing.T) {
	cases := []struct {
		s    Status
		want string
	}{
		{Status{Stream: "tasks", State: client.StateConnecting, Transport: "auto"}, "connecting to tasks over auto"},
		{Status{Stream: "room/lobby", State: client.StateConnected, Transport: "sse"}, "connected to room/lobby over sse"},
		{Status{Stream: "room/lobby", State: client.StateReconnecting, Attempt: 2, RetryIn: 1520 * time.Millisecond, Err: errDropped},
			"reconnecting to room/lobby in 1.5s (try 2): the server closed the connection"},
		{Status{Stream: "room/lobby", State: client.StateReconnecting, Attempt: 3, RetryIn: 2 * time.Second, Err: errRefused},
			"reconnecting to room/lobby in 2s (try 3): server unreachable (connection refused)"},
		{Status{Stream: "room/lobby", State: client.StateClosed, Err: errors.New("refused")}, "room/lobby closed: refused"},
	}
	for _, tc := range cases {
		if got := PlainStatus(&tc.s); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
