// Package tasktest reads what watchers saw of tasks on the tasks stream,
// for the tests of the task runner and of the server that serves it: the
// events of one task, its final state, and a check that no task ever went
// back.
package tasktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pushd/push/protocol"
)

// Final returns the first final state of task id among evs, or nil.
func Final(evs []protocol.Event, id string) *protocol.Task {
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == id && ev.Task.State.Final() {
			return ev.Task
		}
	}
	return nil
}

// Seen reports whether an event about task id satisfies cond.
func Seen(evs []protocol.Event, id string, cond func(protocol.Task) bool) bool {
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == id && cond(*ev.Task) {
			return true
		}
	}
	return false
}

// Of returns the states of task id that evs carry, in order.
func Of(evs []protocol.Event, id string) []protocol.Task {
	var out []protocol.Task
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == id {
			out = append(out, *ev.Task)
		}
	}
	return out
}

// EventsOf returns the events about task id.
func EventsOf(evs []protocol.Event, id string) []protocol.Event {
	var out []protocol.Event
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == id {
			out = append(out, ev)
		}
	}
	return out
}

// String is a task in a line, for failure messages.
func String(tk protocol.Task) string {
	return fmt.Sprintf("%s %s done %d/%d %g%% %q", tk.ID, tk.State, tk.Done, tk.Total, tk.Percent, tk.Message)
}

// EventsString is events one a line, for failure messages.
func EventsString(evs []protocol.Event) string {
	if len(evs) == 0 {
		return "nothing"
	}
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %d %s", ev.Seq, ev.Type)
		if ev.Task != nil {
			b.WriteString(" " + String(*ev.Task))
		}
	}
	return b.String()
}

// rank orders task states: queued, running, then any final state.
func rank(s protocol.TaskState) int {
	switch {
	case s == protocol.TaskQueued:
		return 0
	case s == protocol.TaskRunning:
		return 1
	}
	return 2
}

// CheckOrder checks what a watcher saw: progress events of the tasks
// stream with rising seqs, and per task a state that never goes back
// (queued, running, one final state and nothing after it), and done and
// percent that never decrease.
func CheckOrder(t testing.TB, evs []protocol.Event) {
	t.Helper()
	last := make(map[string]protocol.Task)
	for i, ev := range evs {
		if ev.Stream != protocol.TasksStream || ev.Type != protocol.TypeProgress || ev.Task == nil {
			t.Errorf("event %d is not a task's progress: %+v", ev.Seq, ev)
			continue
		}
		if i > 0 && (ev.Seq <= evs[i-1].Seq || ev.Epoch != evs[i-1].Epoch) {
			t.Errorf("event %s follows %s", ev.Cursor(), evs[i-1].Cursor())
		}
		cur := *ev.Task
		prev, ok := last[cur.ID]
		last[cur.ID] = cur
		if !ok {
			continue
		}
		switch {
		case prev.State.Final():
			t.Errorf("task %s: event %d after its final state: %s after %s", cur.ID, ev.Seq, String(cur), String(prev))
		case rank(cur.State) < rank(prev.State):
			t.Errorf("task %s went back from %s to %s at event %d", cur.ID, prev.State, cur.State, ev.Seq)
		}
		if cur.Done < prev.Done {
			t.Errorf("task %s: done went back from %d to %d at event %d", cur.ID, prev.Done, cur.Done, ev.Seq)
		}
		if cur.Percent < prev.Percent {
			t.Errorf("task %s: percent went back from %g to %g at event %d", cur.ID, prev.Percent, cur.Percent, ev.Seq)
		}
	}
}

// CheckSame checks that a task as the API shows it is the task of its
// final event, the ETA aside.
func CheckSame(t testing.TB, got, want protocol.Task) {
	t.Helper()
	got.ETASeconds, want.ETASeconds = nil, nil
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(gj, wj) {
		t.Errorf("the API shows %s;\nthe final event said %s", gj, wj)
	}
}
