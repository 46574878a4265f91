package natsstore_test

// Tasks across servers: pushd servers on one embedded NATS (started with
// the cluster helpers), each with its own connection, Store and Tasks. A
// task runs on the server that started it; the others list it, show it,
// forward reports and cancels to it, and end it when its server is gone.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
)

// Node TTLs: steadyTTL where no server should ever be taken for gone, even
// on a loaded machine running the race detector; goneTTL where one goes.
const (
	steadyTTL = 30 * time.Second
	goneTTL   = 2 * time.Second
)

// withTasks gives each server of a test cluster a natsstore.Tasks on its
// store as its task store and task peers, and progress events at most
// 1 ms apart.
func withTasks(nodeTTL time.Duration) func(t *testing.T, i int, st *natsstore.Store, cfg *server.Config) {
	return func(t *testing.T, i int, st *natsstore.Store, cfg *server.Config) {
		shared := openTasks(t, st, natsstore.TaskOptions{NodeTTL: nodeTTL, Logger: cfg.Logger})
		cfg.TaskStore, cfg.TaskPeers = shared, shared
		cfg.Tasks.MinInterval = time.Millisecond
	}
}

// startTaskCluster starts n servers with tasks on one NATS, under a prefix
// of the test's own.
func startTaskCluster(t *testing.T, natsURL string, n int, nodeTTL time.Duration) []*clusterNode {
	t.Helper()
	return startCluster(t, natsURL, n, natsstore.Options{Prefix: "t" + server.NewEpoch()}, withTasks(nodeTTL))
}

// startTaskNode starts server i of a cluster under prefix.
func startTaskNode(t *testing.T, natsURL, prefix string, i int, nodeTTL time.Duration) *clusterNode {
	t.Helper()
	return startClusterNode(t, natsURL, i, natsstore.Options{Prefix: prefix}, withTasks(nodeTTL))
}

// wantTask sends a request and fails the test unless it is answered
// status; it decodes a task from a 2xx body.
func (n *clusterNode) wantTask(t *testing.T, status int, method, path, body string) protocol.Task {
	t.Helper()
	got, b := n.do(t, method, path, body)
	if got != status {
		t.Fatalf("%s %s on %s: %d %s, want %d", method, path, n.URL, got, b, status)
	}
	var task protocol.Task
	if status < 300 {
		if err := json.Unmarshal(b, &task); err != nil {
			t.Fatalf("%s %s on %s: %v in %s", method, path, n.URL, err, b)
		}
	}
	return task
}

// wantTaskError sends a request and fails the test unless it is answered
// with status and the error code; it returns the error's message.
func (n *clusterNode) wantTaskError(t *testing.T, status int, code, method, path, body string) string {
	t.Helper()
	got, b := n.do(t, method, path, body)
	var eb protocol.ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || got != status || eb.Error.Code != code {
		t.Fatalf("%s %s on %s: %d %s, want %d %s", method, path, n.URL, got, b, status, code)
	}
	return eb.Error.Message
}

// wantRetry sends a request and fails the test unless it is answered 503
// unavailable with Retry-After; it returns the error's message.
func (n *clusterNode) wantRetry(t *testing.T, method, path, body string) string {
	t.Helper()
	status, h, b := n.doHeader(t, method, path, body)
	var eb protocol.ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || status != http.StatusServiceUnavailable || eb.Error.Code != protocol.CodeUnavailable {
		t.Fatalf("%s %s on %s: %d %s, want 503 unavailable", method, path, n.URL, status, b)
	}
	if ra := h.Get("Retry-After"); ra != "1" {
		t.Fatalf("%s %s on %s: 503 with Retry-After %q, want 1", method, path, n.URL, ra)
	}
	return eb.Error.Message
}

// getTask returns a task as the node shows it, and the status.
func (n *clusterNode) getTask(t *testing.T, id string) (protocol.Task, int) {
	t.Helper()
	status, b := n.do(t, http.MethodGet, "/v1/tasks/"+id, "")
	var task protocol.Task
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &task); err != nil {
			t.Fatalf("GET task on %s: %v in %s", n.URL, err, b)
		}
	}
	return task, status
}

// listTasks returns the node's GET /v1/tasks.
func (n *clusterNode) listTasks(t *testing.T) []protocol.Task {
	t.Helper()
	var l protocol.TaskList
	status, b := n.do(t, http.MethodGet, "/v1/tasks", "")
	if status != http.StatusOK {
		t.Fatalf("GET /v1/tasks on %s: %d %s", n.URL, status, b)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("GET /v1/tasks on %s: %v in %s", n.URL, err, b)
	}
	return l.Tasks
}

// startTask starts a task on the node.
func (n *clusterNode) startTask(t *testing.T, body string) protocol.Task {
	t.Helper()
	return n.wantTask(t, http.StatusCreated, http.MethodPost, "/v1/tasks", body)
}

// poll calls cond until it holds (true) or waitTimeout has passed (false).
func poll(cond func() bool) bool {
	deadline := time.Now().Add(waitTimeout)
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

// waitTask polls the node until its view of the task satisfies cond.
func (n *clusterNode) waitTask(t *testing.T, id, what string, cond func(protocol.Task) bool) protocol.Task {
	t.Helper()
	var last protocol.Task
	var status int
	ok := poll(func() bool {
		last, status = n.getTask(t, id)
		return status == http.StatusOK && cond(last)
	})
	if !ok {
		t.Fatalf("%s: task %s never %s; last %d %+v", n.URL, id, what, status, last)
	}
	return last
}

// streamTask returns the task's states as published on the shared tasks
// stream, read from NATS through the node's store.
func (n *clusterNode) streamTask(t *testing.T, id string) []protocol.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var out []protocol.Task
	var after uint64
	for {
		evs, info, err := n.Store.Read(ctx, protocol.TasksStream, after, 1000)
		if err != nil {
			t.Fatalf("read the tasks stream through %s: %v", n.URL, err)
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

// taskEvents returns the task's states as the node's GET
// /v1/tasks/{id}/events gives them (short polls from the start).
func (n *clusterNode) taskEvents(t *testing.T, id string) []protocol.Task {
	t.Helper()
	var out []protocol.Task
	since := "0"
	for {
		status, b := n.do(t, http.MethodGet, "/v1/tasks/"+id+"/events?wait=0&since="+since, "")
		if status != http.StatusOK {
			t.Fatalf("GET /v1/tasks/%s/events on %s: %d %s", id, n.URL, status, b)
		}
		var p protocol.Poll
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("events of %s on %s: %v in %s", id, n.URL, err, b)
		}
		if len(p.Events) == 0 {
			return out
		}
		for _, ev := range p.Events {
			if ev.Task == nil || ev.Task.ID != id {
				t.Fatalf("events of %s on %s: %s", id, n.URL, b)
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
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	a, b := nodes[0], nodes[1]

	task := a.startTask(t, `{"kind":"external","name":"backup","total":10}`)
	id := task.ID
	running := func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning }

	// B shows and lists A's task.
	b.waitTask(t, id, "running on b", running)
	if !poll(func() bool { tk, ok := listed(b.listTasks(t), id); return ok && tk.State == protocol.TaskRunning }) {
		t.Fatalf("b never listed task %s as running: %+v", id, b.listTasks(t))
	}
	if tk, ok := listed(a.listTasks(t), id); !ok || tk.Name != "backup" {
		t.Fatalf("a lists %+v, want its own task %s", a.listTasks(t), id)
	}

	// A report POSTed to B is applied by A and answered by B as A would.
	got := b.wantTask(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":4,"message":"copied four"}`)
	if got.ID != id || got.Done != 4 || got.Percent != 40 || got.Message != "copied four" {
		t.Fatalf("report through b answered %+v, want done 4 (40%%)", got)
	}
	if tk, status := a.getTask(t, id); status != http.StatusOK || tk.Done != 4 {
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
	b.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":2}`)
	b.wantTaskError(t, http.StatusBadRequest, protocol.CodeInvalidParam, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"percent":101}`)

	// One task's events, on B: A's task exists there too.
	if !poll(func() bool {
		for _, s := range b.taskEvents(t, id) {
			if s.Done == 4 {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("b's events of the task never showed the report: %+v", b.taskEvents(t, id))
	}

	// Cancel POSTed to B: A's task ends cancelled and says so once.
	got = b.wantTask(t, http.StatusAccepted, http.MethodPost, "/v1/tasks/"+id+"/cancel", "")
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
	if !poll(func() bool {
		f := finals(b.taskEvents(t, id))
		return len(f) == 1 && f[0].State == protocol.TaskCancelled
	}) {
		t.Fatalf("b's events of the task: %+v, want it to end cancelled", b.taskEvents(t, id))
	}

	// A finished task of A: B answers 409 as A does, from its record.
	b.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/cancel", "")
	b.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":5}`)

	// A task no server has: 404 everywhere, for every request.
	for _, n := range nodes {
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/tnosuchtask", "")
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodPost, "/v1/tasks/tnosuchtask/cancel", "")
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodPost, "/v1/tasks/tnosuchtask/progress", `{"done":1}`)
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/tnosuchtask/events", "")
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/no.such..key>/events", "")
	}
}

func TestClusterTasksExternalTaskSucceedsThroughAnotherServer(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	a, b := nodes[0], nodes[1]
	id := a.startTask(t, `{"kind":"external","name":"copy"}`).ID
	b.waitTask(t, id, "seen on b", func(protocol.Task) bool { return true })
	b.wantTask(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"percent":50}`)
	got := b.wantTask(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"state":"succeeded","message":"all copied"}`)
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
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	a, b := nodes[0], nodes[1]
	id := a.startTask(t, `{"kind":"demo","name":"long","total":100000,"interval":"10ms"}`).ID

	// Its progress reaches B through the record.
	b.waitTask(t, id, "making progress on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Done >= 3 })
	// A demo reports its own progress, wherever the report goes.
	b.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":1}`)

	b.wantTask(t, http.StatusAccepted, http.MethodPost, "/v1/tasks/"+id+"/cancel", "")
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
	a := startTaskNode(t, ns.URL(), prefix, 0, steadyTTL)
	id := a.startTask(t, `{"kind":"external","name":"ongoing"}`).ID
	a.waitTask(t, id, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })

	// A server that starts (or restarts) on the same NATS takes back
	// nothing of another's.
	c := startTaskNode(t, ns.URL(), prefix, 1, steadyTTL)
	if tk, status := c.getTask(t, id); status != http.StatusOK || tk.State != protocol.TaskRunning {
		t.Fatalf("the new server shows %d %+v, want a's task running", status, tk)
	}
	c.wantTask(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":1}`)
	if tk, _ := a.getTask(t, id); tk.State != protocol.TaskRunning || tk.Done != 1 {
		t.Fatalf("a shows %+v, want its task running at done 1", tk)
	}
	if f := finals(a.streamTask(t, id)); len(f) != 0 {
		t.Fatalf("final events %+v for a task that runs on", f)
	}
}

func TestClusterTasksOfAVanishedServerFailOnce(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns.URL(), 3, goneTTL)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ext := a.startTask(t, `{"kind":"external","name":"ext"}`).ID
	demo := a.startTask(t, `{"kind":"demo","name":"demo","total":100000,"interval":"10ms"}`).ID
	done := a.startTask(t, `{"kind":"external","name":"done"}`).ID
	a.wantTask(t, http.StatusOK, http.MethodPost, "/v1/tasks/"+done+"/progress", `{"state":"succeeded"}`)
	for _, id := range []string{ext, demo} {
		b.waitTask(t, id, "running on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
	}

	// A loses NATS for good: its connection closes, its liveness lapses.
	a.Store.Close()

	// Until then its tasks cannot be reached, and say so: at once if NATS
	// has dropped a's subscription already, else after the timeout.
	msg := b.wantRetry(t, http.MethodPost, "/v1/tasks/"+ext+"/cancel", "")
	if !strings.Contains(msg, "does not answer") && !strings.Contains(msg, "did not answer in time") {
		t.Fatalf("cancel of a vanished server's task: %q, want it to say the server does not answer", msg)
	}

	for _, id := range []string{ext, demo} {
		for _, n := range []*clusterNode{b, c} {
			tk := n.waitTask(t, id, "failed on "+n.URL, func(tk protocol.Task) bool { return tk.State.Final() })
			if tk.State != protocol.TaskFailed || !strings.Contains(tk.Message, "is gone") || tk.Finished == nil {
				t.Fatalf("%s shows %+v, want failed: its server is gone", n.URL, tk)
			}
		}
		if !poll(func() bool { return len(finals(b.streamTask(t, id))) > 0 }) {
			t.Fatalf("no final event for task %s", id)
		}
	}
	// The finished task is still listed, kept by a survivor.
	if tk, ok := listed(c.listTasks(t), done); !ok || tk.State != protocol.TaskSucceeded {
		t.Fatalf("c lists %+v, want the finished task %s", c.listTasks(t), done)
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
	for _, n := range []*clusterNode{b, c} {
		n.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+ext+"/cancel", "")
	}
}

// wantClean fails the test if a 503's message gives the store's details.
func wantClean(t *testing.T, path, msg string) {
	t.Helper()
	if strings.Contains(strings.ToLower(msg), "nats") || strings.Contains(msg, server.ErrUnavailable.Error()) {
		t.Fatalf("%s: 503 says %q, want it without the store's details", path, msg)
	}
}

func TestClusterTasksNATSUnreachable(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	a, b := nodes[0], nodes[1]
	id := a.startTask(t, `{"kind":"external","name":"ext"}`).ID
	b.waitTask(t, id, "seen on b", func(protocol.Task) bool { return true })

	ns.Stop()
	if !poll(func() bool { return !b.Store.Conn().IsConnected() }) {
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
		wantClean(t, path, b.wantRetry(t, method, path, body))
	}
	wantClean(t, "/v1/tasks", a.wantRetry(t, http.MethodPost, "/v1/tasks", `{"kind":"external"}`))

	// Back again, the cluster answers as before.
	ns.Restart()
	if !poll(func() bool {
		status, _ := b.do(t, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":2}`)
		return status == http.StatusOK
	}) {
		t.Fatal("a report through b never got through after NATS came back")
	}
	if tk, _ := a.getTask(t, id); tk.Done != 2 {
		t.Fatalf("a shows %+v, want done 2", tk)
	}
}
