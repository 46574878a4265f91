package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks"
)

// The task runner's tests: what watchers see of tasks on every transport,
// queueing, coalescing, stalls, panics, forgetting and shutdown. The HTTP
// API's answers and errors are in tasks_http_test.go.

// taskTransports are the three ways to watch a stream.
var taskTransports = []string{"ws", "sse", "longpoll"}

// taskWait bounds every wait for a condition; conditions are polled every
// taskPollEvery.
const (
	taskWait      = 10 * time.Second
	taskPollEvery = 2 * time.Millisecond
)

// taskPoll checks cond every taskPollEvery until it holds (true) or timeout
// passes (false).
func taskPoll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(taskPollEvery)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// taskWaitFor fails the test unless cond holds within taskWait.
func taskWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !taskPoll(taskWait, cond) {
		t.Fatalf("gave up after %s waiting for %s", taskWait, what)
	}
}

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
// apart unless cfg says otherwise, and logs going to t.Logf. Cleanup shuts
// it down.
func startTaskServer(t *testing.T, cfg server.Config) *taskServer {
	t.Helper()
	logs := &taskLogWriter{t: t}
	t.Cleanup(logs.stop) // registered first, so it runs last
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

// taskLogWriter passes the server's log lines to t.Logf until the test ends.
type taskLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *taskLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("server: %s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (w *taskLogWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
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
	if !taskPoll(taskWait, func() bool { task = ts.getTask(id); return cond(task) }) {
		ts.t.Fatalf("task %s: gave up waiting for %s; it is %s", id, what, taskString(task))
	}
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
	taskWaitFor(ts.t, "an event with "+what, func() bool {
		evs, _ := ts.streamEvents()
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Task != nil && evs[i].Task.ID == id {
				return cond(*evs[i].Task)
			}
		}
		return false
	})
}

// taskWatcher follows a stream over one transport and keeps what it sees.
type taskWatcher struct {
	ts        *taskServer
	name      string
	transport string
	cancel    context.CancelFunc
	done      chan struct{}

	mu     sync.Mutex
	events []protocol.Event
	polls  int    // long polling: answers received
	ended  bool   // the stream ended, or a poll was refused
	end    string // how: "ws close 1012 server_shutdown", "sse close server_shutdown", "longpoll 503 unavailable", ...
}

var taskWatchers atomic.Int64

// watch follows path (a stream URL with its query, such as
// "/v1/tasks/{id}/events?since=0") over transport. A WebSocket or SSE
// watcher is subscribed when watch returns; a long-polling one polls
// continually. Cleanup stops it.
func (ts *taskServer) watch(transport, path string) *taskWatcher {
	t := ts.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &taskWatcher{ts: ts, transport: transport, cancel: cancel, done: make(chan struct{}),
		name: fmt.Sprintf("%s-%d", transport, taskWatchers.Add(1))}
	switch transport {
	case "ws":
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http")+path, nil)
		if err != nil {
			cancel()
			t.Fatalf("websocket %s: %v", path, err)
		}
		go w.readWS(ctx, c)
	case "sse":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+path, nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := ts.client.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("sse %s: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			t.Fatalf("sse %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		go w.readSSE(resp.Body)
	case "longpoll":
		go w.poll(ctx, path)
	default:
		cancel()
		t.Fatalf("unknown transport %q", transport)
	}
	t.Cleanup(w.stop)
	return w
}

// stop ends the watcher and waits for its goroutine.
func (w *taskWatcher) stop() {
	w.cancel()
	<-w.done
}

func (w *taskWatcher) add(evs ...protocol.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, evs...)
}

func (w *taskWatcher) finish(end string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.ended, w.end = true, end
	}
}

func (w *taskWatcher) readWS(ctx context.Context, c *websocket.Conn) {
	defer close(w.done)
	defer c.CloseNow()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				w.finish(fmt.Sprintf("ws close %d %s", ce.Code, ce.Reason))
			} else {
				w.finish("ws: " + err.Error())
			}
			return
		}
		var ev protocol.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			w.finish(fmt.Sprintf("ws: message %q is not an event: %v", data, err))
			return
		}
		w.add(ev)
	}
}

func (w *taskWatcher) readSSE(body io.ReadCloser) {
	defer close(w.done)
	defer body.Close()
	br := bufio.NewReader(body)
	var id, event, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			w.finish("sse: " + err.Error())
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ": ")
		switch {
		case line == "":
			if data == "" {
				break // retry: or a comment
			}
			if event == "close" {
				var c struct{ Reason string }
				_ = json.Unmarshal([]byte(data), &c)
				w.finish("sse close " + c.Reason)
				return
			}
			var ev protocol.Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				w.finish(fmt.Sprintf("sse: data %q is not an event: %v", data, err))
				return
			}
			if id != ev.Cursor().String() || event != string(ev.Type) {
				w.finish(fmt.Sprintf("sse: frame id %q event %q for event %s of type %s", id, event, ev.Cursor(), ev.Type))
				return
			}
			w.add(ev)
			id, event, data = "", "", ""
		case strings.HasPrefix(line, ":"), field == "retry":
		case field == "id":
			id = value
		case field == "event":
			event = value
		case field == "data":
			data = value
		default:
			w.finish(fmt.Sprintf("sse: unexpected line %q", line))
			return
		}
	}
}

// poll long-polls path, passing each answer's cursor to the next poll,
// until a poll fails or is refused.
func (w *taskWatcher) poll(ctx context.Context, path string) {
	defer close(w.done)
	u, err := url.Parse(w.ts.url + path)
	if err != nil {
		w.finish(err.Error())
		return
	}
	q := u.Query()
	q.Set("wait", "10s")
	for {
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			w.finish(err.Error())
			return
		}
		req.Header.Set(taskWatcherHeader, w.name)
		resp, err := w.ts.client.Do(req)
		if err != nil {
			w.finish("longpoll: " + err.Error())
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			w.finish("longpoll: " + err.Error())
			return
		}
		if resp.StatusCode != http.StatusOK {
			var eb protocol.ErrorBody
			_ = json.Unmarshal(b, &eb)
			w.finish(fmt.Sprintf("longpoll %d %s", resp.StatusCode, eb.Error.Code))
			return
		}
		var p protocol.Poll
		if err := json.Unmarshal(b, &p); err != nil || p.Cursor == "" {
			w.finish(fmt.Sprintf("longpoll: answer %q: %v", b, err))
			return
		}
		w.mu.Lock()
		w.events = append(w.events, p.Events...)
		w.polls++
		w.mu.Unlock()
		q.Set("since", p.Cursor)
	}
}

// seen returns a copy of the events so far, whether the stream ended, and how.
func (w *taskWatcher) seen() ([]protocol.Event, bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]protocol.Event(nil), w.events...), w.ended, w.end
}

// waitFor waits until cond holds for the events seen so far and returns
// them. It fails the test if the stream ends first.
func (w *taskWatcher) waitFor(what string, cond func([]protocol.Event) bool) []protocol.Event {
	t := w.ts.t
	t.Helper()
	var evs []protocol.Event
	var ended bool
	var end string
	ok := taskPoll(taskWait, func() bool {
		evs, ended, end = w.seen()
		return cond(evs) || ended
	})
	if !ok || !cond(evs) {
		t.Fatalf("%s watcher: no %s (ended: %v %s); it saw %s", w.name, what, ended, end, taskEventsString(evs))
	}
	return evs
}

// waitFinal waits for a final state of task id and returns that state.
func (w *taskWatcher) waitFinal(id string) protocol.Task {
	w.ts.t.Helper()
	evs := w.waitFor("final state of "+id, func(evs []protocol.Event) bool { return taskFinal(evs, id) != nil })
	return *taskFinal(evs, id)
}

// waitEnded waits for the stream to end and returns how it ended and what
// was seen before.
func (w *taskWatcher) waitEnded() ([]protocol.Event, string) {
	t := w.ts.t
	t.Helper()
	var evs []protocol.Event
	var ended bool
	var end string
	if !taskPoll(taskWait, func() bool { evs, ended, end = w.seen(); return ended }) {
		t.Fatalf("%s watcher: the stream did not end; it saw %s", w.name, taskEventsString(evs))
	}
	return evs, end
}

// waitInFlight waits until cond holds for the events seen and the watcher
// is subscribed: a WebSocket or SSE stream is open, or a long poll made
// after those events has reached the server.
func (w *taskWatcher) waitInFlight(what string, cond func([]protocol.Event) bool) {
	t := w.ts.t
	t.Helper()
	var evs []protocol.Event
	ok := taskPoll(taskWait, func() bool {
		w.mu.Lock()
		evs = append([]protocol.Event(nil), w.events...)
		polls, ended := w.polls, w.ended
		w.mu.Unlock()
		if ended || !cond(evs) {
			return false
		}
		if w.transport != "longpoll" {
			return true
		}
		w.ts.mu.Lock()
		defer w.ts.mu.Unlock()
		return w.ts.entered[w.name] > polls
	})
	if !ok {
		t.Fatalf("%s watcher: gave up waiting for %s while subscribed; it saw %s", w.name, what, taskEventsString(evs))
	}
}

// taskFinal returns the first final state of task id among evs, or nil.
func taskFinal(evs []protocol.Event, id string) *protocol.Task {
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == id && ev.Task.State.Final() {
			return ev.Task
		}
	}
	return nil
}

// taskSeen reports whether an event about task id satisfies cond.
func taskSeen(evs []protocol.Event, id string, cond func(protocol.Task) bool) bool {
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == id && cond(*ev.Task) {
			return true
		}
	}
	return false
}

// taskOf returns the events about task id.
func taskOf(evs []protocol.Event, id string) []protocol.Task {
	var out []protocol.Task
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == id {
			out = append(out, *ev.Task)
		}
	}
	return out
}

func taskString(tk protocol.Task) string {
	return fmt.Sprintf("%s %s done %d/%d %g%% %q", tk.ID, tk.State, tk.Done, tk.Total, tk.Percent, tk.Message)
}

func taskEventsString(evs []protocol.Event) string {
	if len(evs) == 0 {
		return "nothing"
	}
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %d %s", ev.Seq, ev.Type)
		if ev.Task != nil {
			b.WriteString(" " + taskString(*ev.Task))
		}
	}
	return b.String()
}

var taskStateRank = map[protocol.TaskState]int{
	protocol.TaskQueued: 0, protocol.TaskRunning: 1,
	protocol.TaskSucceeded: 2, protocol.TaskFailed: 2, protocol.TaskCancelled: 2,
}

// taskCheckOrder checks what a watcher saw: progress events of the tasks
// stream with rising seqs, and per task a state that never goes back
// (queued, running, one final state and nothing after it), and done and
// percent that never decrease.
func taskCheckOrder(t *testing.T, evs []protocol.Event) {
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
			t.Errorf("task %s: event %d after its final state: %s after %s", cur.ID, ev.Seq, taskString(cur), taskString(prev))
		case taskStateRank[cur.State] < taskStateRank[prev.State]:
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

// taskCheckSameTask checks that a task as GET shows it is the task of its
// final event, the ETA aside.
func taskCheckSameTask(t *testing.T, got, want protocol.Task) {
	t.Helper()
	got.ETASeconds, want.ETASeconds = nil, nil
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(gj, wj) {
		t.Errorf("GET shows %s;\nthe final event said %s", gj, wj)
	}
}

func TestTaskDemoRunsToSucceeded(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			all := ts.watch(tr, "/v1/tasks/events?since="+ts.cursor())
			task := ts.startTask(`{"kind":"demo","name":"try it","total":20,"interval":"10ms"}`)
			if task.State != protocol.TaskQueued || task.Kind != "demo" || task.Name != "try it" {
				t.Errorf("start answered %s kind %q name %q; want queued demo \"try it\"", taskString(task), task.Kind, task.Name)
			}
			one := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")

			for _, w := range []*taskWatcher{one, all} {
				final := w.waitFinal(task.ID)
				evs, _, _ := w.seen()
				taskCheckOrder(t, evs)
				seen := taskOf(evs, task.ID)
				if seen[0].State != protocol.TaskQueued {
					t.Errorf("%s: the first event is %s; want the queued state", w.name, taskString(seen[0]))
				}
				if !taskSeen(evs, task.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Started != nil }) {
					t.Errorf("%s: no running state with a start time among %s", w.name, taskEventsString(evs))
				}
				if !taskSeen(evs, task.ID, func(tk protocol.Task) bool { return tk.Percent > 0 && tk.Percent < 100 }) {
					t.Errorf("%s: no progress between 0 and 100%% among %s", w.name, taskEventsString(evs))
				}
				if final.State != protocol.TaskSucceeded || final.Percent != 100 || final.Done != 20 || final.Total != 20 || final.Finished == nil {
					t.Errorf("%s: final state %s; want succeeded, 20/20, 100%%, with a finish time", w.name, taskString(final))
				}
			}
			evs, _, _ := all.seen()
			for i := 1; i < len(evs); i++ {
				if evs[i].Seq != evs[i-1].Seq+1 {
					t.Errorf("the tasks stream went from seq %d to %d; it rises by one", evs[i-1].Seq, evs[i].Seq)
				}
			}
			taskCheckSameTask(t, ts.getTask(task.ID), one.waitFinal(task.ID))
		})
	}
}

func TestTaskDemoFailAt(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			task := ts.startTask(`{"kind":"demo","total":10,"interval":"5ms","fail_at":4}`)
			w := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			final := w.waitFinal(task.ID)
			if final.State != protocol.TaskFailed || final.Message != "failed at step 4 of 10 (fail_at)" || final.Done != 3 || final.Finished == nil {
				t.Errorf("final state %s; want failed at step 4 with done 3 and a finish time", taskString(final))
			}
			evs, _, _ := w.seen()
			taskCheckOrder(t, evs)
			taskCheckSameTask(t, ts.getTask(task.ID), final)
		})
	}
}

func TestTaskCancelRunning(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			// An hour a step: only a cancellation can end it within the test.
			task := ts.startTask(`{"kind":"demo","total":3,"interval":"1h"}`)
			w := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			w.waitFor("running state", func(evs []protocol.Event) bool {
				return taskSeen(evs, task.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
			})
			ts.cancelTask(task.ID)
			final := w.waitFinal(task.ID)
			if final.State != protocol.TaskCancelled || final.Message != "cancelled on request" || final.Finished == nil {
				t.Errorf("final state %s; want cancelled \"cancelled on request\"", taskString(final))
			}
			evs, _, _ := w.seen()
			taskCheckOrder(t, evs)
			taskCheckSameTask(t, ts.getTask(task.ID), final)

			status, _, body := ts.do(http.MethodPost, "/v1/tasks/"+task.ID+"/cancel", "")
			taskWantError(t, status, body, http.StatusConflict, protocol.CodeConflict)
		})
	}
}

func TestTaskLateWatcherGetsHistoryThenLive(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			task := ts.startTask(`{"kind":"external","name":"backup","total":10}`)
			ts.waitTask(task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
			ts.report(task.ID, `{"done":1,"message":"one"}`)
			ts.report(task.ID, `{"done":2}`)
			ts.report(task.ID, `{"done":3,"message":"three"}`)

			// Joining late, from the start: the history first.
			w := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			evs := w.waitFor("done 3", func(evs []protocol.Event) bool {
				return taskSeen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 3 && tk.Message == "three" })
			})
			seen := taskOf(evs, task.ID)
			if len(seen) < 3 || seen[0].State != protocol.TaskQueued || seen[1].State != protocol.TaskRunning {
				t.Errorf("a watcher from since=0 saw %s; want queued, running, then progress", taskEventsString(evs))
			}

			// Resuming after the first event skips it.
			later := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since="+evs[0].Cursor().String())
			levs := later.waitFor("done 3", func(evs []protocol.Event) bool {
				return taskSeen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 3 })
			})
			if levs[0].Seq != evs[1].Seq {
				t.Errorf("a watcher from since=%s began at %s; want %s", evs[0].Cursor(), levs[0].Cursor(), evs[1].Cursor())
			}

			// Then what happens now.
			ts.report(task.ID, `{"done":7}`)
			for _, w := range []*taskWatcher{w, later} {
				w.waitFor("done 7", func(evs []protocol.Event) bool {
					return taskSeen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 7 })
				})
			}
			ts.report(task.ID, `{"state":"succeeded"}`)
			for _, w := range []*taskWatcher{w, later} {
				final := w.waitFinal(task.ID)
				if final.State != protocol.TaskSucceeded || final.Done != 10 || final.Percent != 100 {
					t.Errorf("%s: final state %s; want succeeded 10/10", w.name, taskString(final))
				}
				evs, _, _ := w.seen()
				taskCheckOrder(t, evs)
			}
		})
	}
}

func TestTaskTwoWatchersOneLeaves(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			task := ts.startTask(`{"kind":"demo","total":20,"interval":"5ms"}`)
			leaver := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			stayer := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			leaver.waitFor("some progress", func(evs []protocol.Event) bool {
				return taskSeen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done >= 2 })
			})
			leaver.stop()
			final := stayer.waitFinal(task.ID)
			if final.State != protocol.TaskSucceeded || final.Done != 20 {
				t.Errorf("after one watcher left, the task ended %s; want succeeded 20/20", taskString(final))
			}
			evs, _, _ := stayer.seen()
			taskCheckOrder(t, evs)
			if got := ts.getTask(task.ID); got.State != protocol.TaskSucceeded {
				t.Errorf("GET shows %s; want succeeded", taskString(got))
			}
		})
	}
}

func TestTaskEventsShowOnlyThatTask(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			// A tail of 8 events: watchers that join later read the
			// older events from the store, filtered there.
			ts := startTaskServer(t, server.Config{TailSize: 8})
			all := ts.watch(tr, "/v1/tasks/events?since="+ts.cursor())
			a := ts.startTask(`{"kind":"demo","name":"a","total":10,"interval":"5ms"}`)
			b := ts.startTask(`{"kind":"demo","name":"b","total":10,"interval":"5ms"}`)
			wa := ts.watch(tr, "/v1/tasks/"+a.ID+"/events?since=0")
			wb := ts.watch(tr, "/v1/tasks/"+b.ID+"/events?since=0")
			all.waitFor("both final states", func(evs []protocol.Event) bool {
				return taskFinal(evs, a.ID) != nil && taskFinal(evs, b.ID) != nil
			})
			allEvs, _, _ := all.seen()
			taskCheckOrder(t, allEvs)
			lateA := ts.watch(tr, "/v1/tasks/"+a.ID+"/events?since=0")
			lateB := ts.watch(tr, "/v1/tasks/"+b.ID+"/events?since=0")
			for _, c := range []struct {
				w  *taskWatcher
				id string
			}{{wa, a.ID}, {wb, b.ID}, {lateA, a.ID}, {lateB, b.ID}} {
				c.w.waitFinal(c.id)
				evs, _, _ := c.w.seen()
				taskCheckOrder(t, evs)
				var want []uint64
				for _, ev := range allEvs {
					if ev.Task != nil && ev.Task.ID == c.id {
						want = append(want, ev.Seq)
					}
				}
				var got []uint64
				for _, ev := range evs {
					if ev.Task == nil || ev.Task.ID != c.id {
						t.Errorf("the events of task %s include %s", c.id, taskEventsString([]protocol.Event{ev}))
					}
					got = append(got, ev.Seq)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("the events of task %s have seqs %v; the tasks stream has %v for it", c.id, got, want)
				}
			}
		})
	}
}

func TestTaskShutdownCancelsRunningTasks(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{Tasks: tasks.Config{MaxRunning: 1}})
			all := ts.watch(tr, "/v1/tasks/events?since="+ts.cursor())
			running := ts.startTask(`{"kind":"demo","total":3,"interval":"1h"}`)
			queued := ts.startTask(`{"kind":"demo","total":3,"interval":"1h"}`)
			external := ts.startTask(`{"kind":"external"}`)
			one := ts.watch(tr, "/v1/tasks/"+running.ID+"/events?since=0")

			// Both watchers are subscribed and the tasks stream is quiet:
			// the demo's total is out, the external task runs.
			settled := func(evs []protocol.Event) bool {
				return taskSeen(evs, running.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Total == 3 })
			}
			one.waitInFlight("the running demo's total", settled)
			all.waitInFlight("the running demo's total and the external task running", func(evs []protocol.Event) bool {
				return settled(evs) && taskSeen(evs, queued.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskQueued }) &&
					taskSeen(evs, external.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
			})

			if tr == "longpoll" {
				// A poll that has reached the wrapper may not yet be counted
				// by the server; wait until both are, so the shutdown
				// answers them rather than refusing them.
				ok := taskPoll(taskWait, func() bool {
					_, _, b := ts.do(http.MethodGet, "/metrics", "")
					return strings.Contains(string(b), `pushd_connections{transport="longpoll"} 2`)
				})
				if !ok {
					t.Fatal("the two long polls never waited at once")
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), taskWait)
			defer cancel()
			if err := ts.srv.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}

			wantEnd := map[string]string{
				"ws":       fmt.Sprintf("ws close %d %s", protocol.CloseCodeServiceRestart, protocol.CloseShutdown),
				"sse":      "sse close " + protocol.CloseShutdown,
				"longpoll": fmt.Sprintf("longpoll %d %s", http.StatusServiceUnavailable, protocol.CodeUnavailable),
			}[tr]
			for _, c := range []struct {
				w   *taskWatcher
				ids []string
			}{{one, []string{running.ID}}, {all, []string{running.ID, queued.ID, external.ID}}} {
				evs, end := c.w.waitEnded()
				if end != wantEnd {
					t.Errorf("%s: the stream ended with %q; want %q", c.w.name, end, wantEnd)
				}
				taskCheckOrder(t, evs)
				finals := 0
				for _, id := range c.ids {
					final := taskFinal(evs, id)
					if final == nil {
						// A long poll is answered as soon as there is one
						// event; the poll after it may come once the server
						// refuses polls, and miss the rest (it resumes from
						// its cursor on the restarted server).
						if tr != "longpoll" {
							t.Errorf("%s: the stream ended before the final state of %s; it saw %s", c.w.name, id, taskEventsString(evs))
						}
						continue
					}
					finals++
					if final.State != protocol.TaskCancelled || final.Message != "server shutting down" {
						t.Errorf("%s: final state %s; want cancelled \"server shutting down\"", c.w.name, taskString(*final))
					}
				}
				if finals == 0 {
					t.Errorf("%s: the subscription waiting when the server shut down ended without a final state; it saw %s", c.w.name, taskEventsString(evs))
				}
			}
			for _, id := range []string{running.ID, queued.ID, external.ID} {
				got := ts.getTask(id)
				if got.State != protocol.TaskCancelled || got.Message != "server shutting down" || got.Finished == nil {
					t.Errorf("after shutdown GET shows %s; want cancelled \"server shutting down\"", taskString(got))
				}
			}
			if got := ts.getTask(queued.ID); got.Started != nil {
				t.Errorf("the queued task has a start time %v; it never ran", got.Started)
			}
			status, _, body := ts.do(http.MethodPost, "/v1/tasks", `{"kind":"demo"}`)
			taskWantError(t, status, body, http.StatusServiceUnavailable, protocol.CodeUnavailable)
		})
	}
}

// taskGates registers the kind "gate": {"kind":"gate","gate":"a"} runs
// until the test opens gate "a" (then succeeds) or it is cancelled. It
// counts how many run at once.
type taskGates struct {
	mu         sync.Mutex
	gates      map[string]chan struct{}
	started    map[string]bool
	running    int
	maxRunning int
}

type taskGateParams struct {
	Gate string `json:"gate"`
}

func (p *taskGateParams) Validate() error {
	if p.Gate == "" {
		return errors.New("gate is required")
	}
	return nil
}

func newTaskGates(s *server.Server) *taskGates {
	g := &taskGates{gates: make(map[string]chan struct{}), started: make(map[string]bool)}
	tasks.RegisterKind(s.Tasks(), "gate", func(ctx context.Context, p taskGateParams, r *tasks.Reporter) error {
		g.mu.Lock()
		g.started[p.Gate] = true
		g.running++
		g.maxRunning = max(g.maxRunning, g.running)
		ch := g.gateLocked(p.Gate)
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.running--
			g.mu.Unlock()
		}()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return g
}

func (g *taskGates) gateLocked(name string) chan struct{} {
	ch, ok := g.gates[name]
	if !ok {
		ch = make(chan struct{})
		g.gates[name] = ch
	}
	return ch
}

func (g *taskGates) open(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gateLocked(name))
}

func (g *taskGates) state() (started map[string]bool, maxRunning int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	started = make(map[string]bool)
	for k, v := range g.started {
		started[k] = v
	}
	return started, g.maxRunning
}

func TestTaskMaxRunningQueuesTheRest(t *testing.T) {
	ts := startTaskServer(t, server.Config{Tasks: tasks.Config{MaxRunning: 2}})
	gates := newTaskGates(ts.srv)
	ids := make(map[string]string)
	for _, g := range []string{"a", "b", "c", "d"} {
		ids[g] = ts.startTask(`{"kind":"gate","name":"` + g + `","gate":"` + g + `"}`).ID
	}
	isRunning := func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning }
	isSucceeded := func(tk protocol.Task) bool { return tk.State == protocol.TaskSucceeded }
	ts.waitTask(ids["a"], "running", isRunning)
	ts.waitTask(ids["b"], "running", isRunning)
	for _, g := range []string{"c", "d"} {
		if got := ts.getTask(ids[g]); got.State != protocol.TaskQueued || got.Started != nil {
			t.Errorf("with 2 running, task %s is %s (started %v); want queued", g, taskString(got), got.Started)
		}
	}

	// A slot frees up: the oldest queued task starts, the other waits.
	gates.open("a")
	ts.waitTask(ids["a"], "succeeded", isSucceeded)
	ts.waitTask(ids["c"], "running", isRunning)
	if got := ts.getTask(ids["d"]); got.State != protocol.TaskQueued {
		t.Errorf("task d is %s; want still queued", taskString(got))
	}

	// Cancelling a queued task ends it at once; it never runs.
	ts.cancelTask(ids["d"])
	d := ts.waitTask(ids["d"], "cancelled", func(tk protocol.Task) bool { return tk.State.Final() })
	if d.State != protocol.TaskCancelled || d.Message != "cancelled before it started" || d.Started != nil || d.Finished == nil {
		t.Errorf("cancelled queued task is %s (started %v); want cancelled \"cancelled before it started\", never started", taskString(d), d.Started)
	}
	status, _, body := ts.do(http.MethodPost, "/v1/tasks/"+ids["d"]+"/cancel", "")
	taskWantError(t, status, body, http.StatusConflict, protocol.CodeConflict)

	// It held no slot: a new task still queues behind the two running.
	ids["e"] = ts.startTask(`{"kind":"gate","gate":"e"}`).ID
	if got := ts.getTask(ids["e"]); got.State != protocol.TaskQueued {
		t.Errorf("with b and c running, a new task is %s; want queued", taskString(got))
	}
	gates.open("b")
	ts.waitTask(ids["e"], "running", isRunning)
	gates.open("c")
	gates.open("e")
	for _, g := range []string{"b", "c", "e"} {
		ts.waitTask(ids[g], "succeeded", isSucceeded)
	}
	started, maxRunning := gates.state()
	if started["d"] {
		t.Error("the task cancelled while queued ran anyway")
	}
	if maxRunning > 2 {
		t.Errorf("%d tasks ran at once; MaxRunning is 2", maxRunning)
	}
	evs, _ := ts.streamEvents()
	taskCheckOrder(t, evs)
}

func TestTaskPanickingKindFailsOnlyItsTask(t *testing.T) {
	ts := startTaskServer(t, server.Config{})
	tasks.RegisterKind(ts.srv.Tasks(), "boom", func(ctx context.Context, p struct{}, r *tasks.Reporter) error {
		r.Progress(1, "about to panic")
		panic("kaboom")
	})
	other := ts.startTask(`{"kind":"demo","total":10,"interval":"5ms"}`)
	boom := ts.startTask(`{"kind":"boom"}`)
	w := ts.watch("sse", "/v1/tasks/events?since=0")
	final := w.waitFinal(boom.ID)
	if final.State != protocol.TaskFailed || !strings.Contains(final.Message, "panic") || !strings.Contains(final.Message, "kaboom") {
		t.Errorf("the panicking task ended %s; want failed, saying it panicked with kaboom", taskString(final))
	}
	if got := w.waitFinal(other.ID); got.State != protocol.TaskSucceeded {
		t.Errorf("a task running beside the panic ended %s; want succeeded", taskString(got))
	}
	// The server goes on serving.
	status, _, body := ts.do(http.MethodGet, "/healthz", "")
	if status != http.StatusOK {
		t.Errorf("GET /healthz after a task panicked: %d %s", status, body)
	}
	again := ts.startTask(`{"kind":"demo","total":2,"interval":"1ms"}`)
	if got := w.waitFinal(again.ID); got.State != protocol.TaskSucceeded {
		t.Errorf("a task started after the panic ended %s; want succeeded", taskString(got))
	}
	evs, _, _ := w.seen()
	taskCheckOrder(t, evs)
}

// taskStepParams are the params of a registered kind in the tests.
type taskStepParams struct {
	Steps int64  `json:"steps"`
	Fail  string `json:"fail"`
}

func (p *taskStepParams) Validate() error {
	if p.Steps < 1 || p.Steps > 5 {
		return fmt.Errorf("steps must be from 1 to 5, not %d", p.Steps)
	}
	return nil
}

func TestTaskRegisteredKind(t *testing.T) {
	ts := startTaskServer(t, server.Config{})
	tasks.RegisterKind(ts.srv.Tasks(), "steps", func(ctx context.Context, p taskStepParams, r *tasks.Reporter) error {
		r.SetTotal(p.Steps)
		for i := range p.Steps {
			r.Progress(i+1, "")
		}
		if p.Fail != "" {
			return errors.New(p.Fail)
		}
		return nil
	})
	w := ts.watch("ws", "/v1/tasks/events?since=0")
	ok := ts.startTask(`{"kind":"steps","steps":3}`)
	if ok.Name != "steps" {
		t.Errorf("a task started without a name is named %q; want its kind", ok.Name)
	}
	bad := ts.startTask(`{"kind":"steps","steps":2,"fail":"disk full"}`)
	if got := w.waitFinal(ok.ID); got.State != protocol.TaskSucceeded || got.Done != 3 || got.Percent != 100 {
		t.Errorf("ended %s; want succeeded 3/3", taskString(got))
	}
	if got := w.waitFinal(bad.ID); got.State != protocol.TaskFailed || got.Message != "disk full" {
		t.Errorf("ended %s; want failed \"disk full\"", taskString(got))
	}
	before := len(ts.listTasks())
	status, _, body := ts.do(http.MethodPost, "/v1/tasks", `{"kind":"steps","steps":9}`)
	taskWantError(t, status, body, http.StatusBadRequest, protocol.CodeInvalidParam)
	if !strings.Contains(string(body), "steps must be from 1 to 5") {
		t.Errorf("the answer to params that fail Validate does not say why: %s", body)
	}
	if after := len(ts.listTasks()); after != before {
		t.Errorf("a refused start left %d tasks; there were %d", after, before)
	}
}

func TestTaskCoalescedProgress(t *testing.T) {
	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		// With an hour between progress events, only the state changes go out.
		ts := startTaskServer(t, server.Config{Tasks: tasks.Config{MinInterval: time.Hour}})
		task := ts.startTask(`{"kind":"demo","total":30,"interval":"1ms"}`)
		w := ts.watch("sse", "/v1/tasks/"+task.ID+"/events?since=0")
		final := w.waitFinal(task.ID)
		evs, _, _ := w.seen()
		taskCheckOrder(t, evs)
		var states []protocol.TaskState
		for _, tk := range taskOf(evs, task.ID) {
			states = append(states, tk.State)
		}
		if fmt.Sprint(states) != "[queued running succeeded]" {
			t.Errorf("30 steps with an hour between progress events gave %s; want queued, running, succeeded", taskEventsString(evs))
		}
		if final.Done != 30 || final.Percent != 100 {
			t.Errorf("final state %s; want 30/30", taskString(final))
		}
	})
	t.Run("external", func(t *testing.T) {
		t.Parallel()
		ts := startTaskServer(t, server.Config{Tasks: tasks.Config{MinInterval: time.Hour}})
		task := ts.startTask(`{"kind":"external","total":20}`)
		w := ts.watch("ws", "/v1/tasks/"+task.ID+"/events?since=0")
		ts.waitTask(task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
		const reports = 20
		for i := 1; i < reports; i++ {
			if got := ts.report(task.ID, fmt.Sprintf(`{"done":%d}`, i)); got.Done != int64(i) {
				t.Fatalf("report done %d answered %s", i, taskString(got))
			}
		}
		ts.report(task.ID, `{"state":"succeeded","message":"all copied"}`)
		final := w.waitFinal(task.ID)
		evs, _, _ := w.seen()
		taskCheckOrder(t, evs)
		seen := taskOf(evs, task.ID)
		if len(seen) >= reports {
			t.Errorf("%d reports gave %d events; want fewer", reports, len(seen))
		}
		if seen[0].State != protocol.TaskQueued || seen[1].State != protocol.TaskRunning {
			t.Errorf("the start was coalesced away: %s", taskEventsString(evs))
		}
		if final.State != protocol.TaskSucceeded || final.Message != "all copied" || final.Done != 20 {
			t.Errorf("final state %s; want succeeded \"all copied\" 20/20", taskString(final))
		}
	})
	t.Run("latest wins", func(t *testing.T) {
		t.Parallel()
		// A held-back progress event goes out later with the latest state.
		ts := startTaskServer(t, server.Config{Tasks: tasks.Config{MinInterval: 50 * time.Millisecond}})
		task := ts.startTask(`{"kind":"external","total":10}`)
		w := ts.watch("longpoll", "/v1/tasks/"+task.ID+"/events?since=0")
		ts.waitTask(task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
		for i := 1; i <= 10; i++ {
			ts.report(task.ID, fmt.Sprintf(`{"done":%d,"message":"file %d"}`, i, i))
		}
		evs := w.waitFor("done 10", func(evs []protocol.Event) bool {
			return taskSeen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 10 && tk.Message == "file 10" })
		})
		taskCheckOrder(t, evs)
		if final := taskFinal(evs, task.ID); final != nil {
			t.Errorf("the task ended by itself: %s", taskString(*final))
		}
	})
}

func TestTaskExternalStalls(t *testing.T) {
	ts := startTaskServer(t, server.Config{Tasks: tasks.Config{StallTimeout: 50 * time.Millisecond}})
	task := ts.startTask(`{"kind":"external","name":"silent"}`)
	w := ts.watch("sse", "/v1/tasks/"+task.ID+"/events?since=0")
	final := w.waitFinal(task.ID)
	if final.State != protocol.TaskFailed || !strings.HasPrefix(final.Message, "stalled") || !strings.Contains(final.Message, "50ms") {
		t.Errorf("a silent external task ended %s; want failed as stalled after 50ms", taskString(final))
	}
	evs, _, _ := w.seen()
	taskCheckOrder(t, evs)
	status, _, body := ts.do(http.MethodPost, "/v1/tasks/"+task.ID+"/progress", `{"done":1}`)
	taskWantError(t, status, body, http.StatusConflict, protocol.CodeConflict)
}

func TestTaskExternalReportBeforeItRuns(t *testing.T) {
	// A script may end its task at once: start it, then report "failed"
	// before the task's goroutine has marked it running. Through the Go API
	// (Server.Tasks, for programs that embed pushd) the report nearly
	// always comes first; over HTTP, now and then.
	ts := startTaskServer(t, server.Config{})
	w := ts.watch("sse", "/v1/tasks/events?since="+ts.cursor())
	tasks := ts.srv.Tasks()
	ctx := context.Background()
	want := make(map[string]protocol.TaskState)
	var ids []string
	for i := range 100 {
		task, err := tasks.Start(ctx, "external", fmt.Sprintf("quick %d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, state := "disk full", protocol.TaskFailed
		if i%2 == 1 {
			msg, state = "nothing to do", protocol.TaskSucceeded
		}
		if _, err := tasks.Report(ctx, task.ID, protocol.ProgressReport{State: state, Message: &msg}); err != nil {
			t.Fatalf("report %s: %v", state, err)
		}
		want[task.ID] = state
		ids = append(ids, task.ID)
	}
	// Shutdown returns once every task's goroutine has ended, and the
	// watcher gets every event before its stream closes.
	sctx, cancel := context.WithTimeout(ctx, taskWait)
	defer cancel()
	if err := ts.srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	evs, _ := w.waitEnded()
	wrong := 0
	for _, id := range ids {
		got, err := tasks.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != want[id] {
			if wrong++; wrong <= 3 {
				t.Errorf("task %s reported %s but ended %s; watchers saw:%s", id, want[id], taskString(got), taskEventsString(taskEventsOf(evs, id)))
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d external tasks ended in another state than the one they reported", wrong, len(ids))
	}
	reopened := 0
	for _, id := range ids {
		seen := taskOf(evs, id)
		for i, tk := range seen {
			if tk.State.Final() && i < len(seen)-1 {
				reopened++
				break
			}
		}
	}
	if reopened > 0 {
		t.Errorf("for %d of %d tasks watchers saw events after the final state", reopened, len(ids))
	}
}

// taskEventsOf returns the events about task id.
func taskEventsOf(evs []protocol.Event, id string) []protocol.Event {
	var out []protocol.Event
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID == id {
			out = append(out, ev)
		}
	}
	return out
}
