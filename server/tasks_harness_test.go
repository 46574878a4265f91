package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks/tasktest"
)

// A server for the task tests, and the requests they send it. Watchers
// are in tasks_watch_test.go.

// taskWait bounds every wait for a condition; conditions are polled every
// taskPollEvery.
const (
	taskWait      = 10 * time.Second
	taskPollEvery = 2 * time.Millisecond
)

// taskServer is a pushd server running in-process on 127.0.0.1 for a task
// test.
type taskServer struct {
	t      *testing.T
	srv    *server.Server
	url    string
	client *http.Client

	mu      sync.Mutex
	entered map[string]int // requests that reached the server, by the watcher that sent them
}

// taskWatcherHeader names the watcher a long poll belongs to, so a test can
// tell when one of its polls has reached the server.
const taskWatcherHeader = "X-Task-Test-Watcher"

// startTaskServer starts a server for cfg with progress events at most 1 ms
// apart unless cfg says otherwise, and logs going to t.Log. Cleanup shuts
// it down.
func startTaskServer(t *testing.T, cfg server.Config) *taskServer {
	t.Helper()
	logs := testlog.New(t)
	t.Cleanup(logs.Stop) // registered first, so it runs last
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	if cfg.Tasks.MinInterval == 0 {
		cfg.Tasks.MinInterval = time.Millisecond
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &taskServer{t: t, srv: srv, entered: make(map[string]int)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get(taskWatcherHeader); name != "" {
			ts.mu.Lock()
			ts.entered[name]++
			ts.mu.Unlock()
		}
		srv.ServeHTTP(w, r)
	}))
	ts.url, ts.client = hs.URL, hs.Client()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), taskWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return ts
}

// do sends a request and returns the status, header and body. A body is
// sent as application/json unless header (name, value pairs) sets another
// Content-Type; an empty value removes the header.
func (ts *taskServer) do(method, path, body string, header ...string) (int, http.Header, []byte) {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ts.t.Context(), method, ts.url+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// doJSON sends a request, fails the test unless the answer has status
// want, and decodes the answer into v.
func (ts *taskServer) doJSON(method, path, body string, want int, v any) {
	ts.t.Helper()
	status, _, b := ts.do(method, path, body)
	if status != want {
		ts.t.Fatalf("%s %s %s: %d %s; want %d", method, path, body, status, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			ts.t.Fatalf("%s %s: answer %q: %v", method, path, b, err)
		}
	}
}

// startTask starts a task from a POST /v1/tasks body.
func (ts *taskServer) startTask(body string) protocol.Task {
	ts.t.Helper()
	var task protocol.Task
	ts.doJSON(http.MethodPost, "/v1/tasks", body, http.StatusCreated, &task)
	if task.ID == "" {
		ts.t.Fatalf("POST /v1/tasks %s: no id in the answer", body)
	}
	return task
}

func (ts *taskServer) getTask(id string) protocol.Task {
	ts.t.Helper()
	var task protocol.Task
	ts.doJSON(http.MethodGet, "/v1/tasks/"+id, "", http.StatusOK, &task)
	return task
}

func (ts *taskServer) listTasks() []protocol.Task {
	ts.t.Helper()
	var list protocol.TaskList
	ts.doJSON(http.MethodGet, "/v1/tasks", "", http.StatusOK, &list)
	return list.Tasks
}

// cancelTask cancels a task and expects 202.
func (ts *taskServer) cancelTask(id string) protocol.Task {
	ts.t.Helper()
	var task protocol.Task
	ts.doJSON(http.MethodPost, "/v1/tasks/"+id+"/cancel", "", http.StatusAccepted, &task)
	if task.ID != id {
		ts.t.Fatalf("cancel %s answered with task %q", id, task.ID)
	}
	return task
}

// report posts an external task's progress report and expects 200.
func (ts *taskServer) report(id, body string) protocol.Task {
	ts.t.Helper()
	var task protocol.Task
	ts.doJSON(http.MethodPost, "/v1/tasks/"+id+"/progress", body, http.StatusOK, &task)
	return task
}

// waitTask polls GET /v1/tasks/{id} until cond holds, and returns the task.
func (ts *taskServer) waitTask(id, what string, cond func(protocol.Task) bool) protocol.Task {
	ts.t.Helper()
	var task protocol.Task
	testwait.Until(ts.t, taskWait, taskPollEvery, func() error {
		if task = ts.getTask(id); !cond(task) {
			return fmt.Errorf("task %s: no %s; it is %s", id, what, tasktest.String(task))
		}
		return nil
	})
	return task
}

// streamEvents returns everything on the tasks stream (a short poll from 0)
// and the cursor after it.
func (ts *taskServer) streamEvents() ([]protocol.Event, string) {
	ts.t.Helper()
	var p protocol.Poll
	ts.doJSON(http.MethodGet, "/v1/tasks/events?since=0&wait=0", "", http.StatusOK, &p)
	return p.Events, p.Cursor
}

// cursor returns the tasks stream's current cursor.
func (ts *taskServer) cursor() string {
	ts.t.Helper()
	var p protocol.Poll
	ts.doJSON(http.MethodGet, "/v1/tasks/events?wait=0", "", http.StatusOK, &p)
	if p.Cursor == "" {
		ts.t.Fatal("short poll without a cursor")
	}
	return p.Cursor
}

// waitQuiet waits until the last event on the tasks stream about task id
// satisfies cond, so that nothing is still waiting to go out.
func (ts *taskServer) waitQuiet(id, what string, cond func(protocol.Task) bool) {
	ts.t.Helper()
	testwait.Until(ts.t, taskWait, taskPollEvery, func() error {
		evs, _ := ts.streamEvents()
		if seen := tasktest.Of(evs, id); len(seen) > 0 && cond(seen[len(seen)-1]) {
			return nil
		}
		return fmt.Errorf("the last event of task %s has no %s; the stream has %s", id, what, tasktest.EventsString(evs))
	})
}

// taskWantError checks an error answer: the status, and the JSON error body
// with the code and a message.
func taskWantError(t *testing.T, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	var eb protocol.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Message == "" {
		t.Errorf("answer %d %q is not the JSON error body (want %d %s)", status, body, wantStatus, wantCode)
		return
	}
	if status != wantStatus || eb.Error.Code != wantCode {
		t.Errorf("answer %d %s %q; want %d %s", status, eb.Error.Code, eb.Error.Message, wantStatus, wantCode)
	}
}

// taskSnapshot is what a refused request must leave as it was: the tasks,
// their states, and the tasks stream.
func (ts *taskServer) taskSnapshot() string {
	ts.t.Helper()
	list := ts.listTasks()
	for i := range list {
		list[i].ETASeconds = nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		ts.t.Fatal(err)
	}
	return string(b) + " at " + ts.cursor()
}
