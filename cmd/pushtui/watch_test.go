package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

// startTask starts a demo task with pushtui task start and returns its ID.
func startTask(t *testing.T, srv *pushdtest.Server, args ...string) string {
	t.Helper()
	out, errOut, code := pushtui(t, nil, append([]string{"--server", srv.URL, "task", "start"}, args...)...)
	if code != 0 {
		t.Fatalf("task start: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

// lastLine returns the last line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// TestFollowTaskToTheEnd: watch-progress --task follows a demo task to
// 100% and exits 0, over every transport.
func TestFollowTaskToTheEnd(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			id := startTask(t, srv, "--name", "build", "--total", "20", "--interval", "10ms")
			out, errOut, code := pushtui(t, nil, "--server", srv.URL, "--transport", tr, "watch-progress", "--task", id)
			if code != 0 {
				t.Fatalf("exit %d: %s\n%s", code, errOut, out)
			}
			if want := id + " succeeded 20/20 100% build: step 20 of 20"; !strings.HasSuffix(lastLine(out), want) {
				t.Fatalf("last line %q, want it to end with %q", lastLine(out), want)
			}
		})
	}
}

// TestFollowTaskJSON: --json prints each state of the task as a progress
// event, the last one final.
func TestFollowTaskJSON(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			id := startTask(t, srv, "--total", "10", "--interval", "10ms")
			out, errOut, code := pushtui(t, nil, "--server", srv.URL, "--transport", tr, "--json", "watch-progress", "--task", id)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var last protocol.Event
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if err := json.Unmarshal([]byte(line), &last); err != nil {
					t.Fatalf("not JSON: %q: %v", line, err)
				}
				if last.Type != protocol.TypeProgress || last.Task == nil || last.Task.ID != id {
					t.Fatalf("not a progress event of %s: %s", id, line)
				}
			}
			if last.Task.State != protocol.TaskSucceeded || last.Task.Done != 10 {
				t.Fatalf("last state %s %d/%d", last.Task.State, last.Task.Done, last.Task.Total)
			}
		})
	}
}

// TestFollowCancelledTaskExits1: a task cancelled while followed ends the
// follower with exit 1.
func TestFollowCancelledTaskExits1(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			id := startTask(t, srv, "--total", "100000", "--interval", "10ms")
			follow := start(t, nil, nil, "--server", srv.URL, "--transport", tr, "watch-progress", "--task", id)
			follow.out.waitContains(t, id+" running")
			if out, errOut, code := pushtui(t, nil, "--server", srv.URL, "task", "cancel", id); code != 0 {
				t.Fatalf("cancel: exit %d: %s %s", code, out, errOut)
			}
			follow.exits(t, 1)
			if !strings.Contains(lastLine(follow.out.String()), id+" cancelled") {
				t.Fatalf("last line %q", lastLine(follow.out.String()))
			}
		})
	}
}

// TestFollowFailedTaskExits1, and following a task that already ended
// exits at once with its outcome.
func TestFollowFailedTaskExits1(t *testing.T) {
	srv := startServer(t)
	id := startTask(t, srv, "--total", "10", "--interval", "5ms", "--fail-at", "3")
	out, _, code := pushtui(t, nil, "--server", srv.URL, "watch-progress", "--task", id)
	if code != 1 || !strings.Contains(lastLine(out), "failed") {
		t.Fatalf("exit %d, last line %q", code, lastLine(out))
	}
	// Again, now that it has ended.
	out, _, code = pushtui(t, nil, "--server", srv.URL, "watch-progress", "--task", id)
	if code != 1 || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("exit %d, output %q: want one line and exit 1", code, out)
	}
}

// TestFollowUnknownTask says so in one line.
func TestFollowUnknownTask(t *testing.T) {
	srv := startServer(t)
	_, errOut, code := pushtui(t, nil, "--server", srv.URL, "watch-progress", "--task", "nope")
	if code != 1 || !strings.Contains(errOut, "task not found") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("exit %d: %q", code, errOut)
	}
}

// TestWatchAllPlainOverEachTransport: without --task, the plain output is
// every progress event of every task.
func TestWatchAllPlainOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			watch := start(t, nil, nil, "--server", srv.URL, "--transport", tr, "watch-progress", "--plain")
			watch.errOut.waitContains(t, "connected to tasks over "+tr)
			a := startTask(t, srv, "--name", "first", "--total", "5", "--interval", "5ms")
			b := startTask(t, srv, "--name", "second", "--total", "5", "--interval", "5ms")
			watch.out.waitContains(t, a+" succeeded 5/5 100% first", b+" succeeded 5/5 100% second")
			watch.stop(t)
		})
	}
}

// TestWatchAllJSON prints progress events as JSON objects.
func TestWatchAllJSON(t *testing.T) {
	srv := startServer(t)
	watch := start(t, nil, nil, "--server", srv.URL, "watch-progress", "--json")
	watch.errOut.waitContains(t, "connected to tasks")
	id := startTask(t, srv, "--total", "3", "--interval", "5ms")
	out := watch.out.waitContains(t, `"state":"succeeded"`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e protocol.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Task == nil || e.Task.ID != id {
			t.Fatalf("bad line %q: %v", line, err)
		}
	}
	watch.stop(t)
}
