package server_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks/tasktest"
)

// The task tests' server, and the checks they share. Requests and
// watchers are pushdtest's.

// taskTransports are the ways the task tests watch a stream.
var taskTransports = []string{pushdtest.WS, pushdtest.SSE, pushdtest.LongPoll}

// taskConfig is cfg with progress events at most 1 ms apart unless cfg
// says otherwise.
func taskConfig(cfg server.Config) server.Config {
	if cfg.Tasks.MinInterval == 0 {
		cfg.Tasks.MinInterval = time.Millisecond
	}
	return cfg
}

// startTaskServer starts a server for taskConfig(cfg).
func startTaskServer(t *testing.T, cfg server.Config) *pushdtest.Server {
	t.Helper()
	return pushdtest.Start(t, taskConfig(cfg))
}

// forEachTransport runs test for each of taskTransports, in parallel,
// each on a task server of its own for cfg.
func forEachTransport(t *testing.T, cfg server.Config, test func(t *testing.T, tr string, ts *pushdtest.Server)) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			test(t, tr, startTaskServer(t, cfg))
		})
	}
}

// startWatched starts a task from a POST /v1/tasks body and a watcher of
// its events from the start over tr.
func startWatched(t *testing.T, ts *pushdtest.Server, tr, body string) (protocol.Task, *pushdtest.Watcher) {
	t.Helper()
	task := ts.StartTask(t, body)
	return task, ts.Watch(t, tr, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{Since: "0"})
}

// waitQuiet waits until the last event on the tasks stream about task id
// satisfies cond, so that nothing is still waiting to go out.
func waitQuiet(t *testing.T, ts *pushdtest.Server, id, what string, cond func(protocol.Task) bool) {
	t.Helper()
	testwait.Until(t, pushdtest.Timeout, 2*time.Millisecond, func() error {
		evs := ts.History(t, pushdtest.TasksPath)
		if seen := tasktest.Of(evs, id); len(seen) > 0 && cond(seen[len(seen)-1]) {
			return nil
		}
		return fmt.Errorf("the last event of task %s has no %s; the stream has %s", id, what, tasktest.EventsString(evs))
	})
}

// taskSnapshot is what a refused request must leave as it was: the tasks,
// their states, and the tasks stream.
func taskSnapshot(t *testing.T, ts *pushdtest.Server) string {
	t.Helper()
	list := ts.Tasks(t)
	for i := range list {
		list[i].ETASeconds = nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + " at " + ts.Head(t, pushdtest.TasksPath).String()
}
