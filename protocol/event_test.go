package protocol_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// Fields that do not apply to an event's type are left out of its JSON.
func TestEventJSONOmitsFieldsThatDoNotApply(t *testing.T) {
	at := time.Date(2026, 11, 23, 8, 30, 0, 123456789, time.UTC)
	base := protocol.Event{Seq: 42, Epoch: "k3x9q2m7b1c4", Stream: "room/lobby", Time: at}
	for _, tc := range []struct {
		name   string
		edit   func(*protocol.Event)
		fields []string
	}{
		{"message", func(e *protocol.Event) { e.Type, e.User, e.Text = protocol.TypeMessage, "alice", "hi" },
			[]string{"epoch", "seq", "stream", "text", "time", "type", "user"}},
		{"login", func(e *protocol.Event) { e.Type, e.User = protocol.TypeLogin, "alice" },
			[]string{"epoch", "seq", "stream", "time", "type", "user"}},
		{"reset at 0", func(e *protocol.Event) { e.Type, e.Reason, e.Seq = protocol.TypeReset, protocol.ResetCursorAhead, 0 },
			[]string{"epoch", "reason", "seq", "stream", "time", "type"}},
		{"progress", func(e *protocol.Event) {
			e.Type, e.Stream, e.Task = protocol.TypeProgress, protocol.TasksStream, &protocol.Task{ID: "t1", State: protocol.TaskRunning}
		}, []string{"epoch", "seq", "stream", "task", "time", "type"}},
	} {
		ev := base
		tc.edit(&ev)
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, tc.fields) {
			t.Errorf("%s: fields %v; want %v (%s)", tc.name, keys, tc.fields, raw)
		}
		if string(m["time"]) != `"2026-11-23T08:30:00.123456789Z"` {
			t.Errorf("%s: time %s; want RFC 3339 with nanoseconds in UTC", tc.name, m["time"])
		}
		var back protocol.Event
		if err := json.Unmarshal(raw, &back); err != nil || back.Cursor() != ev.Cursor() || back.Type != ev.Type {
			t.Errorf("%s: round trip %+v, %v", tc.name, back, err)
		}
	}
}

func TestEventCursorAndNames(t *testing.T) {
	ev := protocol.Event{Seq: 7, Epoch: "e1"}
	if c := ev.Cursor(); c != (protocol.Cursor{Epoch: "e1", Seq: 7}) || c.String() != "e1:7" {
		t.Fatalf("Cursor() = %+v", c)
	}
	if got := protocol.RoomStream("lobby"); got != "room/lobby" {
		t.Fatalf("RoomStream = %q", got)
	}
	// The poll answer always has an events array, never null.
	raw, _ := json.Marshal(protocol.Poll{Events: []protocol.Event{}, Cursor: "e1:7"})
	if string(raw) != `{"events":[],"cursor":"e1:7"}` {
		t.Fatalf("Poll JSON %s", raw)
	}
	raw, _ = json.Marshal(protocol.ErrorBody{Error: protocol.ErrorDetail{Code: protocol.CodeInvalidCursor, Message: "m"}})
	if string(raw) != `{"error":{"code":"invalid_cursor","message":"m"}}` {
		t.Fatalf("ErrorBody JSON %s", raw)
	}
	e := &protocol.Error{Status: 400, Code: protocol.CodeInvalidCursor, Message: "bad cursor"}
	if e.Error() != "bad cursor (400 invalid_cursor)" {
		t.Fatalf("Error() = %q", e.Error())
	}
}

func TestTaskStateFinal(t *testing.T) {
	for s, want := range map[protocol.TaskState]bool{
		protocol.TaskQueued: false, protocol.TaskRunning: false,
		protocol.TaskSucceeded: true, protocol.TaskFailed: true, protocol.TaskCancelled: true,
	} {
		if s.Final() != want {
			t.Errorf("%s.Final() = %v", s, !want)
		}
	}
}
