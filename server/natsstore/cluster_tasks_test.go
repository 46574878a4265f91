package natsstore_test

// Tasks across servers: pushd servers on one embedded NATS, each with its
// own connection, Store and Tasks, behind its own HTTP listener. A task
// runs on the server that started it; the others list it, show it,
// forward reports and cancels to it, and end it when its server is gone.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
)

// taskWait bounds every wait in these tests; conditions are polled.
const taskWait = 15 * time.Second

// Node TTLs: steadyTTL where no server should ever be taken for gone, even
// on a loaded machine running the race detector; goneTTL where one goes.
const (
	steadyTTL = 30 * time.Second
	goneTTL   = 2 * time.Second
)

// taskNode is one pushd server of a test cluster.
type taskNode struct {
	name   string
	store  *natsstore.Store
	tasks  *natsstore.Tasks
	srv    *server.Server
	url    string
	client *http.Client
}

// taskLogs passes a server's log lines to t.Log until the test ends.
type taskLogs struct {
	mu      sync.Mutex
	t       testing.TB
	prefix  string
	stopped bool
}

func (w *taskLogs) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(w.prefix + strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *taskLogs) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

// startTaskNode runs a pushd server whose store, task store and task
// peers are on NATS at url under prefix, until the test ends.
func startTaskNode(t *testing.T, name, url, prefix string, nodeTTL time.Duration) *taskNode {
	t.Helper()
	logs := &taskLogs{t: t, prefix: name + ": "}
	t.Cleanup(logs.stop) // registered first, so it runs last
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), taskWait)
	defer cancel()
	st, err := natsstore.Open(ctx, natsstore.Options{URL: url, Prefix: prefix, Timeout: 2 * time.Second, Name: name, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tasks, err := natsstore.OpenTasks(ctx, st, natsstore.TaskOptions{NodeTTL: nodeTTL, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tasks.Close() })
	srv, err := server.New(server.Config{
		Store: st, TaskStore: tasks, TaskPeers: tasks, Logger: log,
		Tasks: server.TaskConfig{MinInterval: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), taskWait)
		defer cancel()
		_ = srv.Shutdown(ctx) // a node whose NATS is gone cannot end cleanly
		hs.Close()
	})
	return &taskNode{name: name, store: st, tasks: tasks, srv: srv, url: hs.URL, client: hs.Client()}
}

// startTaskCluster starts n servers on one NATS, with a prefix of the
// test's own.
func startTaskCluster(t *testing.T, ns *natstest.Server, nodeTTL time.Duration, names ...string) []*taskNode {
	t.Helper()
	prefix := "t" + server.NewEpoch()
	nodes := make([]*taskNode, len(names))
	for i, name := range names {
		nodes[i] = startTaskNode(t, name, ns.URL(), prefix, nodeTTL)
	}
	return nodes
}

// do sends a request to the node and returns the status and body.
func (n *taskNode) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), taskWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	return resp.StatusCode, b
}

// want sends a request and fails the test unless it is answered status;
// it decodes a task from a 2xx body.
func (n *taskNode) want(t *testing.T, status int, method, path, body string) protocol.Task {
	t.Helper()
	got, b := n.do(t, method, path, body)
	if got != status {
		t.Fatalf("%s %s on %s: %d %s, want %d", method, path, n.name, got, b, status)
	}
	var task protocol.Task
	if status < 300 {
		if err := json.Unmarshal(b, &task); err != nil {
			t.Fatalf("%s %s on %s: %v in %s", method, path, n.name, err, b)
		}
	}
	return task
}

// wantError sends a request and fails the test unless it is answered with
// status and the error code.
func (n *taskNode) wantError(t *testing.T, status int, code, method, path, body string) string {
	t.Helper()
	got, b := n.do(t, method, path, body)
	var eb protocol.ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || got != status || eb.Error.Code != code {
		t.Fatalf("%s %s on %s: %d %s, want %d %s", method, path, n.name, got, b, status, code)
	}
	return eb.Error.Message
}

// get returns a task as the node shows it, and the status.
func (n *taskNode) get(t *testing.T, id string) (protocol.Task, int) {
	t.Helper()
	status, b := n.do(t, http.MethodGet, "/v1/tasks/"+id, "")
	var task protocol.Task
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &task); err != nil {
			t.Fatalf("GET task on %s: %v in %s", n.name, err, b)
		}
	}
	return task, status
}

// list returns the node's GET /v1/tasks.
func (n *taskNode) list(t *testing.T) []protocol.Task {
	t.Helper()
	var l protocol.TaskList
	status, b := n.do(t, http.MethodGet, "/v1/tasks", "")
	if status != http.StatusOK {
		t.Fatalf("GET /v1/tasks on %s: %d %s", n.name, status, b)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("GET /v1/tasks on %s: %v in %s", n.name, err, b)
	}
	return l.Tasks
}

// start starts a task on the node.
func (n *taskNode) start(t *testing.T, body string) protocol.Task {
	t.Helper()
	return n.want(t, http.StatusCreated, http.MethodPost, "/v1/tasks", body)
}

// waitTask polls the node until its view of the task satisfies cond.
func (n *taskNode) waitTask(t *testing.T, id, what string, cond func(protocol.Task) bool) protocol.Task {
	t.Helper()
	var last protocol.Task
	var status int
	ok := poll(func() bool {
		last, status = n.get(t, id)
		return status == http.StatusOK && cond(last)
	})
	if !ok {
		t.Fatalf("%s: task %s never %s; last %d %+v", n.name, id, what, status, last)
	}
	return last
}

// poll calls cond until it holds (true) or taskWait has passed (false).
func poll(cond func() bool) bool {
	deadline := time.Now().Add(taskWait)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// streamTask returns the task's states as published on the shared tasks
// stream, read from NATS through the node's store.
func (n *taskNode) streamTask(t *testing.T, id string) []protocol.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), taskWait)
	defer cancel()
	var out []protocol.Task
	var after uint64
	for {
		evs, info, err := n.store.Read(ctx, protocol.TasksStream, after, 1000)
		if err != nil {
			t.Fatalf("read the tasks stream through %s: %v", n.name, err)
		}
		for _, ev := range evs {
			if ev.Task != nil && ev.Task.ID == id {
				out = append(out, *ev.Task)
			}
			after = ev.Seq
		}
		if len(evs) == 0 || after >= info.Last {
			return out
		}
	}
}

// events returns the task's states as the node's GET
// /v1/tasks/{id}/events gives them (short polls from the start).
func (n *taskNode) events(t *testing.T, id string) []protocol.Task {
	t.Helper()
	var out []protocol.Task
	since := "0"
	for {
		status, b := n.do(t, http.MethodGet, "/v1/tasks/"+id+"/events?wait=0&since="+since, "")
		if status != http.StatusOK {
			t.Fatalf("GET /v1/tasks/%s/events on %s: %d %s", id, n.name, status, b)
		}
		var p protocol.Poll
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("events of %s on %s: %v in %s", id, n.name, err, b)
		}
		if len(p.Events) == 0 {
			return out
		}
		for _, ev := range p.Events {
			if ev.Task == nil || ev.Task.ID != id {
				t.Fatalf("events of %s on %s: %s", id, n.name, b)
			}
			out = append(out, *ev.Task)
		}
		since = p.Cursor
	}
}

// finals returns the final states among states.
func finals(states []protocol.Task) []protocol.Task {
	var out []protocol.Task
	for _, s := range states {
		if s.State.Final() {
			out = append(out, s)
		}
	}
	return out
}

// listed reports whether the list has the task, and it as listed.
func listed(tasks []protocol.Task, id string) (protocol.Task, bool) {
	for _, t := range tasks {
		if t.ID == id {
			return t, true
		}
	}
	return protocol.Task{}, false
}

func TestClusterTasksExternalTaskWatchedReportedAndCancelledFromAnotherServer(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns, steadyTTL, "a", "b")
	a, b := nodes[0], nodes[1]

	task := a.start(t, `{"kind":"external","name":"backup","total":10}`)
	id := task.ID
	running := func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning }

	// B shows and lists A's task.
	b.waitTask(t, id, "running on b", running)
	if !poll(func() bool { tk, ok := listed(b.list(t), id); return ok && tk.State == protocol.TaskRunning }) {
		t.Fatalf("b never listed task %s as running: %+v", id, b.list(t))
	}
	if tk, ok := listed(a.list(t), id); !ok || tk.Name != "backup" {
		t.Fatalf("a lists %+v, want its own task %s", a.list(t), id)
	}

	// A report POSTed to B is applied by A and answered by B as A would.
	got := b.want(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":4,"message":"copied four"}`)
	if got.ID != id || got.Done != 4 || got.Percent != 40 || got.Message != "copied four" {
		t.Fatalf("report through b answered %+v, want done 4 (40%%)", got)
	}
	if tk, status := a.get(t, id); status != http.StatusOK || tk.Done != 4 {
		t.Fatalf("a shows %d %+v after the report through b, want done 4", status, tk)
	}
	b.waitTask(t, id, "at done 4 on b", func(tk protocol.Task) bool { return tk.Done == 4 })
	if !poll(func() bool {
		for _, s := range b.streamTask(t, id) {
			if s.Done == 4 && s.Message == "copied four" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the report through b never reached the tasks stream: %+v", b.streamTask(t, id))
	}
	// Refused as A refuses it: progress never goes backwards.
	b.wantError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":2}`)
	b.wantError(t, http.StatusBadRequest, protocol.CodeInvalidParam, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"percent":101}`)

	// One task's events, on B: A's task exists there too.
	if !poll(func() bool {
		for _, s := range b.events(t, id) {
			if s.Done == 4 {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("b's events of the task never showed the report: %+v", b.events(t, id))
	}

	// Cancel POSTed to B: A's task ends cancelled and says so once.
	got = b.want(t, http.StatusAccepted, http.MethodPost, "/v1/tasks/"+id+"/cancel", "")
	if got.ID != id {
		t.Fatalf("cancel through b answered %+v", got)
	}
	end := a.waitTask(t, id, "cancelled on a", func(tk protocol.Task) bool { return tk.State == protocol.TaskCancelled })
	if end.Message != "cancelled on request" {
		t.Fatalf("a's task ended %+v, want cancelled on request", end)
	}
	b.waitTask(t, id, "cancelled on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskCancelled })
	if !poll(func() bool { return len(finals(b.streamTask(t, id))) > 0 }) {
		t.Fatal("no final event for the task on the tasks stream")
	}
	if f := finals(b.streamTask(t, id)); len(f) != 1 || f[0].State != protocol.TaskCancelled {
		t.Fatalf("final events %+v, want one, cancelled", f)
	}
	if !poll(func() bool { f := finals(b.events(t, id)); return len(f) == 1 && f[0].State == protocol.TaskCancelled }) {
		t.Fatalf("b's events of the task: %+v, want it to end cancelled", b.events(t, id))
	}

	// A finished task of A: B answers 409 as A does, from its record.
	b.wantError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/cancel", "")
	b.wantError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":5}`)

	// A task no server has: 404 everywhere, for every request.
	for _, n := range nodes {
		n.wantError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/tnosuchtask", "")
		n.wantError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodPost, "/v1/tasks/tnosuchtask/cancel", "")
		n.wantError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodPost, "/v1/tasks/tnosuchtask/progress", `{"done":1}`)
		n.wantError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/tnosuchtask/events", "")
		n.wantError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/no.such..key>/events", "")
	}
}

func TestClusterTasksExternalTaskSucceedsThroughAnotherServer(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns, steadyTTL, "a", "b")
	a, b := nodes[0], nodes[1]
	id := a.start(t, `{"kind":"external","name":"copy"}`).ID
	b.waitTask(t, id, "seen on b", func(protocol.Task) bool { return true })
	b.want(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"percent":50}`)
	got := b.want(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"state":"succeeded","message":"all copied"}`)
	if got.State != protocol.TaskSucceeded || got.Percent != 100 {
		t.Fatalf("final report through b answered %+v", got)
	}
	a.waitTask(t, id, "succeeded on a", func(tk protocol.Task) bool { return tk.State == protocol.TaskSucceeded })
	b.waitTask(t, id, "succeeded on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskSucceeded })
	if !poll(func() bool { return len(finals(a.streamTask(t, id))) == 1 }) {
		t.Fatalf("final events %+v, want one", finals(a.streamTask(t, id)))
	}
}

func TestClusterTasksDemoTaskCancelledFromAnotherServer(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns, steadyTTL, "a", "b")
	a, b := nodes[0], nodes[1]
	id := a.start(t, `{"kind":"demo","name":"long","total":100000,"interval":"10ms"}`).ID

	// Its progress reaches B through the record.
	b.waitTask(t, id, "making progress on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Done >= 3 })
	// A demo reports its own progress, wherever the report goes.
	b.wantError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":1}`)

	b.want(t, http.StatusAccepted, http.MethodPost, "/v1/tasks/"+id+"/cancel", "")
	end := a.waitTask(t, id, "cancelled on a", func(tk protocol.Task) bool { return tk.State.Final() })
	if end.State != protocol.TaskCancelled {
		t.Fatalf("a's demo ended %+v, want cancelled", end)
	}
	b.waitTask(t, id, "cancelled on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskCancelled })
	if !poll(func() bool { return len(finals(b.streamTask(t, id))) == 1 }) {
		t.Fatalf("final events %+v, want one", finals(b.streamTask(t, id)))
	}
}

func TestClusterTasksNewServerLeavesTheOthersTasksAlone(t *testing.T) {
	ns := natstest.Start(t)
	prefix := "t" + server.NewEpoch()
	a := startTaskNode(t, "a", ns.URL(), prefix, steadyTTL)
	id := a.start(t, `{"kind":"external","name":"ongoing"}`).ID
	a.waitTask(t, id, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })

	// A server that starts (or restarts) on the same NATS takes back
	// nothing of another's.
	c := startTaskNode(t, "c", ns.URL(), prefix, steadyTTL)
	if tk, status := c.get(t, id); status != http.StatusOK || tk.State != protocol.TaskRunning {
		t.Fatalf("the new server shows %d %+v, want a's task running", status, tk)
	}
	c.want(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":1}`)
	if tk, _ := a.get(t, id); tk.State != protocol.TaskRunning || tk.Done != 1 {
		t.Fatalf("a shows %+v, want its task running at done 1", tk)
	}
	if f := finals(a.streamTask(t, id)); len(f) != 0 {
		t.Fatalf("final events %+v for a task that runs on", f)
	}
}

func TestClusterTasksOfAVanishedServerFailOnce(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns, goneTTL, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ext := a.start(t, `{"kind":"external","name":"ext"}`).ID
	demo := a.start(t, `{"kind":"demo","name":"demo","total":100000,"interval":"10ms"}`).ID
	done := a.start(t, `{"kind":"external","name":"done"}`).ID
	a.want(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+done+"/progress", `{"state":"succeeded"}`)
	for _, id := range []string{ext, demo} {
		b.waitTask(t, id, "running on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
	}

	// A loses NATS for good: its connection closes, its liveness lapses.
	a.store.Close()

	// Until then its tasks cannot be reached, and say so.
	msg := b.wantError(t, http.StatusServiceUnavailable, protocol.CodeUnavailable, http.MethodPost, "/v1/tasks/"+ext+"/cancel", "")
	if !strings.Contains(msg, "does not answer") {
		t.Fatalf("cancel of a vanished server's task: %q, want it to say the server does not answer", msg)
	}

	for _, id := range []string{ext, demo} {
		for _, n := range []*taskNode{b, c} {
			tk := n.waitTask(t, id, "failed on "+n.name, func(tk protocol.Task) bool { return tk.State.Final() })
			if tk.State != protocol.TaskFailed || !strings.Contains(tk.Message, "is gone") || tk.Finished == nil {
				t.Fatalf("%s shows %+v, want failed: its server is gone", n.name, tk)
			}
		}
		if !poll(func() bool { return len(finals(b.streamTask(t, id))) > 0 }) {
			t.Fatalf("no final event for task %s", id)
		}
	}
	// The finished task is still listed, kept by a survivor.
	if tk, ok := listed(c.list(t), done); !ok || tk.State != protocol.TaskSucceeded {
		t.Fatalf("c lists %+v, want the finished task %s", c.list(t), done)
	}
	// Exactly once: however many reaping rounds B and C go through, each
	// task has one final event.
	deadline := time.Now().Add(2 * goneTTL)
	for time.Now().Before(deadline) {
		for _, id := range []string{ext, demo} {
			if f := finals(b.streamTask(t, id)); len(f) != 1 {
				t.Fatalf("task %s: final events %+v, want one", id, f)
			}
		}
		if f := finals(b.streamTask(t, done)); len(f) != 1 || f[0].State != protocol.TaskSucceeded {
			t.Fatalf("finished task %s: final events %+v, want its own one", done, f)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And the survivors answer for them now.
	for _, n := range []*taskNode{b, c} {
		n.wantError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+ext+"/cancel", "")
	}
}

func TestClusterTasksNATSUnreachable(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns, steadyTTL, "a", "b")
	a, b := nodes[0], nodes[1]
	id := a.start(t, `{"kind":"external","name":"ext"}`).ID
	b.waitTask(t, id, "seen on b", func(protocol.Task) bool { return true })

	ns.Stop()
	if !poll(func() bool { return !b.store.Conn().IsConnected() }) {
		t.Fatal("b still connected to a stopped NATS")
	}
	for path, method := range map[string]string{
		"/v1/tasks":                     http.MethodGet,
		"/v1/tasks/" + id:               http.MethodGet,
		"/v1/tasks/" + id + "/cancel":   http.MethodPost,
		"/v1/tasks/" + id + "/events":   http.MethodGet,
		"/v1/tasks/" + id + "/progress": http.MethodPost,
	} {
		body := ""
		if strings.HasSuffix(path, "progress") {
			body = `{"done":1}`
		}
		b.wantError(t, http.StatusServiceUnavailable, protocol.CodeUnavailable, method, path, body)
	}
	a.wantError(t, http.StatusServiceUnavailable, protocol.CodeUnavailable, http.MethodPost, "/v1/tasks", `{"kind":"external"}`)

	// Back again, the cluster answers as before.
	ns.Restart()
	if !poll(func() bool {
		status, _ := b.do(t, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":2}`)
		return status == http.StatusOK
	}) {
		t.Fatal("a report through b never got through after NATS came back")
	}
	if tk, _ := a.get(t, id); tk.Done != 2 {
		t.Fatalf("a shows %+v, want done 2", tk)
	}
}
