package main

// What pushd keeps across a crash (kill -9) of its process on the bolt
// store: the events it acknowledged, message IDs, who was present, tasks
// and their start keys.

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

func TestKillNineKeepsAcknowledgedEvents(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data, "--publish-rate", "0")
	var acked []protocol.Event
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 15 {
				ev := p.Publish(t, "durable", "tester", fmt.Sprintf("w%d-%d", w, i))
				mu.Lock()
				acked = append(acked, ev)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	old, _ := p.Poll(t, "/v1/rooms/durable/events", "since=0&wait=0")
	p.Kill(t)

	p = startPushd(t, "--data", data, "--publish-rate", "0")
	after, _ := p.Poll(t, "/v1/rooms/durable/events", "since=0&wait=0")
	if len(after) != len(acked) {
		t.Fatalf("after SIGKILL and restart: %d events, want the %d acknowledged", len(after), len(acked))
	}
	bySeq := map[uint64]string{}
	for _, ev := range acked {
		bySeq[ev.Seq] = ev.Text
	}
	for i, ev := range after {
		if ev.Seq != uint64(i+1) || ev.Text != bySeq[ev.Seq] || ev.Epoch != acked[0].Epoch {
			t.Fatalf("event %d after restart = %+v; want seq %d %q in epoch %s", i, ev, i+1, bySeq[uint64(i+1)], acked[0].Epoch)
		}
	}
	// A client resumes with a cursor from before the crash: no reset, the rest in order.
	mid := old[9].Cursor().String()
	resumed, _ := p.Poll(t, "/v1/rooms/durable/events", "wait=0&since="+mid)
	if len(resumed) != len(acked)-10 || resumed[0].Type == protocol.TypeReset || resumed[0].Seq != 11 {
		t.Fatalf("resume from %s: %d events starting %+v; want %d from seq 11 without a reset", mid, len(resumed), resumed[0], len(acked)-10)
	}
}

func TestMessageIDsOutliveKillNine(t *testing.T) {
	data := t.TempDir()
	post := func(p *pushdtest.Process, text string) pushdtest.Answer {
		return p.Post(t, "/v1/rooms/ids/messages", fmt.Sprintf(`{"user":"tester","text":%q,"id":"msg-1"}`, text))
	}
	p := startPushd(t, "--data", data, "--publish-rate", "0")
	first := post(p, "hello")
	if first.Status != http.StatusCreated {
		t.Fatalf("first publish: %d %s", first.Status, first.Body)
	}
	ev := pushdtest.CheckEvent(t, first.Body)
	p.Kill(t)

	p = startPushd(t, "--data", data, "--publish-rate", "0")
	if again := post(p, "hello"); again.Status != http.StatusOK || string(again.Body) != string(first.Body) {
		t.Fatalf("after SIGKILL and restart, a repeat of msg-1: %d %s; want 200 and the first answer %s", again.Status, again.Body, first.Body)
	}
	if other := post(p, "other"); other.Status != http.StatusConflict {
		t.Fatalf("other text under msg-1 after restart: %d %s; want 409", other.Status, other.Body)
	}
	pushdtest.CheckMessages(t, p.History(t, pushdtest.RoomPath("ids")), ev.Epoch, ev.Seq, []string{"hello"})
}

// Who was present survives a crash: after the restart they have the grace
// period to come back. One who does stays logged in (no second login); one
// who does not is logged out, so the room's log has a logout for every
// login.
func TestPresenceSurvivesACrash(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data, "--presence-grace", "1s")
	subscribe := func(user string) {
		t.Helper()
		p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("r"), pushdtest.SubOptions{User: user})
	}
	waitPresent := func(want ...string) {
		t.Helper()
		testwait.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
			if got := p.Presence(t, "r"); !slices.Equal(got, want) {
				return fmt.Errorf("present: %q; want %q", got, want)
			}
			return nil
		})
	}
	subscribe("alice")
	subscribe("bob")
	waitPresent("alice", "bob")
	p.Kill(t)

	p = startPushd(t, "--data", data, "--presence-grace", "1s")
	waitPresent("alice", "bob") // within the grace period
	subscribe("alice")
	waitPresent("alice") // bob's grace is over

	logins, logouts := map[string]int{}, map[string]int{}
	for _, ev := range p.History(t, pushdtest.RoomPath("r")) {
		switch ev.Type {
		case protocol.TypeLogin:
			logins[ev.User]++
		case protocol.TypeLogout:
			logouts[ev.User]++
		}
	}
	if logins["alice"] != 1 || logouts["alice"] != 0 || logins["bob"] != 1 || logouts["bob"] != 1 {
		t.Fatalf("room log: logins %v, logouts %v; want alice logged in once and still there, bob in and out once", logins, logouts)
	}
}

// keyedStart starts a task with an Idempotency-Key and returns the
// status and the task.
func keyedStart(t *testing.T, p *pushdtest.Process, body, key string) (int, protocol.Task) {
	t.Helper()
	a := p.Post(t, "/v1/tasks", body, "Idempotency-Key", key)
	var tk protocol.Task
	a.JSON(t, &tk)
	return a.Status, tk
}

// A start's idempotency key outlives a crash of its server (kill -9) on
// the bolt store: the start sent again afterwards starts nothing.
func TestTaskKeyAcrossKill(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	const body = `{"kind":"external","name":"nightly","total":10}`
	status, first := keyedStart(t, p, body, "nightly:2026-12-01")
	if status != http.StatusCreated {
		t.Fatalf("start: %d", status)
	}
	p.Kill(t)

	p = startPushd(t, "--data", data)
	status, again := keyedStart(t, p, body, "nightly:2026-12-01")
	if status != http.StatusOK || again.ID != first.ID {
		t.Fatalf("the start again after kill -9: %d, task %s; want 200 and %s", status, again.ID, first.ID)
	}
	if status, _ := keyedStart(t, p, `{"kind":"external","name":"other"}`, "nightly:2026-12-01"); status != http.StatusConflict {
		t.Fatalf("another start with the key after kill -9: %d; want 409", status)
	}
}

// A task killed with its server ends failed, interrupted by the restart,
// at the progress its watchers last saw, never less: progress does not go
// back across a crash. Its total is known from the start.
func TestInterruptedTaskKeepsItsProgress(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	task := p.StartTask(t, `{"kind":"demo","name":"long","total":1000,"interval":"20ms"}`)
	if task.Total != 1000 {
		t.Fatalf("start task: total %d; want the total asked for, 1000", task.Total)
	}
	// Let it get going, then read what a watcher has seen of it.
	var seen protocol.Task
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		for _, ev := range p.History(t, pushdtest.TaskPath(task.ID)) {
			if ev.Task != nil && ev.Task.Done > seen.Done {
				seen = *ev.Task
			}
		}
		if seen.Done < 40 {
			return fmt.Errorf("the task reached only %d of 1000 steps", seen.Done)
		}
		return nil
	})
	p.Kill(t)

	p = startPushd(t, "--data", data)
	got := p.Task(t, task.ID)
	if got.State != protocol.TaskFailed || got.Message != "interrupted by server restart" {
		t.Fatalf("task after restart = %s %q; want failed \"interrupted by server restart\"", got.State, got.Message)
	}
	if got.Done < seen.Done || got.Percent < seen.Percent || got.Total != 1000 {
		t.Fatalf("task after restart at %d/%d (%.1f%%); watchers had seen %d/%d (%.1f%%): progress went back", got.Done, got.Total, got.Percent, seen.Done, seen.Total, seen.Percent)
	}
}

// An external task's work goes on elsewhere: when pushd is killed and
// started again on the same data, the task is still running at the
// progress its watchers last saw, and the script's next report is taken.
// A task pushd itself ran ends as interrupted.
func TestExternalTaskGoesOnAfterKill(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	ext := p.StartTask(t, `{"kind":"external","name":"nightly-backup","total":100}`)
	demo := p.StartTask(t, `{"kind":"demo","name":"long","total":1000,"interval":"1s"}`)
	const reported = 30
	for n := 1; n <= reported; n++ {
		p.Report(t, ext.ID, fmt.Sprintf(`{"done":%d,"message":"copied %d"}`, n, n))
	}

	// What a watcher has seen when the server dies: the demo running, and
	// the external task at some progress (the latest reports may still
	// be waiting to go out, coalesced).
	var seen protocol.Task
	var last string
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		evs, _ := p.Poll(t, pushdtest.TasksPath, "since=0&wait=0")
		demoRunning := false
		for _, ev := range evs {
			switch {
			case ev.Task == nil:
			case ev.Task.ID == ext.ID:
				seen = *ev.Task
			case ev.Task.ID == demo.ID:
				demoRunning = demoRunning || ev.Task.State == protocol.TaskRunning
			}
			last = ev.Cursor().String()
		}
		if !demoRunning || seen.Done == 0 {
			return fmt.Errorf("the watcher has not seen the demo running and the external task's progress: %s", pushdtest.Summary(evs))
		}
		return nil
	})
	p.Kill(t)

	p = startPushd(t, "--data", data)
	if interrupted := p.Task(t, demo.ID); interrupted.State != protocol.TaskFailed || interrupted.Message != "interrupted by server restart" {
		t.Errorf("the demo task after the restart is %s %q; want failed \"interrupted by server restart\"", interrupted.State, interrupted.Message)
	}
	if got := p.Task(t, ext.ID); got.State != protocol.TaskRunning || got.Finished != nil || got.Total != 100 || got.Done < seen.Done || got.Done > reported || got.Percent < seen.Percent {
		t.Fatalf("the external task after the restart is %+v; want running, between the %+v watchers saw and the %d reported", got, seen, reported)
	}

	// The script goes on as if nothing had happened.
	next := p.Report(t, ext.ID, fmt.Sprintf(`{"done":%d,"message":"copied %d"}`, reported+1, reported+1))
	if next.State != protocol.TaskRunning || next.Done != reported+1 {
		t.Fatalf("the first report after the restart answered %s at %d; want running at %d", next.State, next.Done, reported+1)
	}
	p.Report(t, ext.ID, `{"state":"succeeded"}`)

	// A watcher resuming from its cursor sees the task running again, then
	// its end, with progress never going back.
	var after []protocol.Task
	testwait.Until(t, 20*time.Second, time.Millisecond, func() error {
		if len(after) > 0 && after[len(after)-1].State.Final() {
			return nil
		}
		evs, _ := p.Poll(t, pushdtest.TaskPath(ext.ID), "wait=10s&since="+last)
		for _, ev := range evs {
			if ev.Type == protocol.TypeReset {
				t.Fatalf("the watcher resuming from %s got a reset", last)
			}
			if ev.Task != nil {
				after = append(after, *ev.Task)
			}
			last = ev.Cursor().String()
		}
		return fmt.Errorf("no final state after the restart; the watcher saw %+v", after)
	})
	if after[0].State != protocol.TaskRunning {
		t.Errorf("the first event after the restart is %s; want running", after[0].State)
	}
	prev := seen
	for _, tk := range after {
		if tk.Done < prev.Done || tk.Percent < prev.Percent {
			t.Errorf("progress went back from %d (%g%%) to %d (%g%%)", prev.Done, prev.Percent, tk.Done, tk.Percent)
		}
		prev = tk
	}
	if final := after[len(after)-1]; final.State != protocol.TaskSucceeded || final.Done != 100 || final.Percent != 100 {
		t.Errorf("final state %s at %d (%g%%); want succeeded at 100", final.State, final.Done, final.Percent)
	}
}

// After a crash an external task's stall timer runs again: one that
// reports nothing more fails as stalled.
func TestExternalTaskStallsAfterKill(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	ext := p.StartTask(t, `{"kind":"external","name":"silent"}`)
	p.Report(t, ext.ID, `{"percent":10}`)
	// Watchers see the report (it may wait a moment to go out, coalesced).
	since := "0"
	seen := false
	testwait.Until(t, 20*time.Second, time.Millisecond, func() error {
		evs, _ := p.Poll(t, pushdtest.TaskPath(ext.ID), "wait=10s&since="+since)
		for _, ev := range evs {
			seen = seen || ev.Task != nil && ev.Task.Percent == 10
			since = ev.Cursor().String()
		}
		if !seen {
			return errors.New("the report has not gone out")
		}
		return nil
	})
	p.Kill(t)

	p = startPushd(t, "--data", data, "--task-stall-timeout", "200ms")
	var final *protocol.Task
	testwait.Until(t, 20*time.Second, time.Millisecond, func() error {
		evs, _ := p.Poll(t, pushdtest.TaskPath(ext.ID), "wait=10s&since="+since)
		for _, ev := range evs {
			if ev.Task != nil && ev.Task.State.Final() {
				final = ev.Task
			}
			since = ev.Cursor().String()
		}
		if final == nil {
			return errors.New("the silent external task has not stalled after the restart")
		}
		return nil
	})
	if final.State != protocol.TaskFailed || !strings.HasPrefix(final.Message, "stalled") || !strings.Contains(final.Message, "200ms") || final.Percent != 10 {
		t.Errorf("the silent external task ended %s %q at %g%%; want failed as stalled after 200ms, at 10%%", final.State, final.Message, final.Percent)
	}
}
