package natsstore_test

// Tasks across servers: pushd servers on one embedded NATS (started with
// the cluster helpers), each with its own connection, Store and Tasks. A
// task runs on the server that started it; the others list it, show it,
// forward reports and cancels to it, and end it when its server is gone.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
	"github.com/pushd/push/server/tasks/tasktest"
)

// Node TTLs: steadyTTL where no server should ever be taken for gone, even
// on a loaded machine running the race detector; goneTTL where one goes.
const (
	steadyTTL = 30 * time.Second
	goneTTL   = 2 * time.Second
)

// startTaskCluster starts n servers with tasks on one NATS, under a prefix
// of the test's own.
func startTaskCluster(t *testing.T, natsURL string, n int, nodeTTL time.Duration) []*clusterNode {
	t.Helper()
	return startCluster(t, natsURL, n, natsstore.Options{Prefix: "t" + server.NewEpoch()}, withTasks(nodeTTL))
}

// startTaskPair starts two servers with tasks on a new embedded NATS,
// which no server is taken for gone on.
func startTaskPair(t *testing.T) (ns *natstest.Server, a, b *clusterNode) {
	t.Helper()
	ns = natstest.Start(t)
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	return ns, nodes[0], nodes[1]
}

// startTaskNode starts server i of a cluster under prefix.
func startTaskNode(t *testing.T, natsURL, prefix string, i int, nodeTTL time.Duration) *clusterNode {
	t.Helper()
	return startClusterNode(t, natsURL, i, natsstore.Options{Prefix: prefix}, withTasks(nodeTTL))
}

// wantTaskError sends a request and fails the test unless it is answered
// with status and the error code; it returns the error's message.
func (n *clusterNode) wantTaskError(t *testing.T, status int, code, method, path, body string) string {
	t.Helper()
	return n.Request(t, t.Context(), method, path, body).WantError(t, status, code).Message
}

// wantRetry sends a request and fails the test unless it is answered 503
// unavailable with Retry-After; it returns the error's message.
func (n *clusterNode) wantRetry(t *testing.T, method, path, body string) string {
	t.Helper()
	a := n.Request(t, t.Context(), method, path, body)
	msg := a.WantError(t, http.StatusServiceUnavailable, protocol.CodeUnavailable).Message
	if ra := a.Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("%s %s on %s: 503 with Retry-After %q, want 1", method, path, n.URL, ra)
	}
	return msg
}

// getTask returns a task as the node shows it, and the status.
func (n *clusterNode) getTask(t *testing.T, id string) (protocol.Task, int) {
	t.Helper()
	a := n.Get(t, "/v1/tasks/"+id)
	var task protocol.Task
	if a.Status == http.StatusOK {
		a.JSON(t, &task)
	}
	return task, a.Status
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
	for _, ev := range n.History(t, pushdtest.TaskPath(id)) {
		if ev.Task == nil || ev.Task.ID != id {
			t.Fatalf("events of %s on %s: %s", id, n.URL, pushdtest.OneLine(ev))
		}
		out = append(out, *ev.Task)
	}
	return out
}

// waitFinals waits until the tasks stream has a final state of task id,
// and returns its final states.
func (n *clusterNode) waitFinals(t *testing.T, id string) []protocol.Task {
	t.Helper()
	var f []protocol.Task
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		if f = finals(n.streamTask(t, id)); len(f) == 0 {
			return fmt.Errorf("no final event for task %s on the tasks stream", id)
		}
		return nil
	})
	return f
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
	_, a, b := startTaskPair(t)

	task := a.StartTask(t, `{"kind":"external","name":"backup","total":10}`)
	id := task.ID
	running := func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning }

	// B shows and lists A's task.
	b.WaitTask(t, id, "running on b", running)
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		if list := b.Tasks(t); !slices.ContainsFunc(list, func(tk protocol.Task) bool { return tk.ID == id && tk.State == protocol.TaskRunning }) {
			return fmt.Errorf("b does not list task %s as running: %+v", id, list)
		}
		return nil
	})
	if tk, ok := listed(a.Tasks(t), id); !ok || tk.Name != "backup" {
		t.Fatalf("a lists %+v, want its own task %s", a.Tasks(t), id)
	}

	// A report POSTed to B is applied by A and answered by B as A would.
	got := b.Report(t, id, `{"done":4,"message":"copied four"}`)
	if got.ID != id || got.Done != 4 || got.Percent != 40 || got.Message != "copied four" {
		t.Fatalf("report through b answered %+v, want done 4 (40%%)", got)
	}
	if tk, status := a.getTask(t, id); status != http.StatusOK || tk.Done != 4 {
		t.Fatalf("a shows %d %+v after the report through b, want done 4", status, tk)
	}
	b.WaitTask(t, id, "at done 4 on b", func(tk protocol.Task) bool { return tk.Done == 4 })
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		if states := b.streamTask(t, id); !slices.ContainsFunc(states, func(s protocol.Task) bool { return s.Done == 4 && s.Message == "copied four" }) {
			return fmt.Errorf("the report through b is not on the tasks stream: %+v", states)
		}
		return nil
	})
	// Refused as A refuses it: progress never goes backwards.
	b.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":2}`)
	b.wantTaskError(t, http.StatusBadRequest, protocol.CodeInvalidParam, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"percent":101}`)

	// One task's events, on B: A's task exists there too.
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		if states := b.taskEvents(t, id); !slices.ContainsFunc(states, func(s protocol.Task) bool { return s.Done == 4 }) {
			return fmt.Errorf("b's events of the task do not show the report: %+v", states)
		}
		return nil
	})

	// Cancel POSTed to B: A's task ends cancelled and says so once.
	got = b.CancelTask(t, id)
	if got.ID != id {
		t.Fatalf("cancel through b answered %+v", got)
	}
	end := a.WaitTask(t, id, "cancelled on a", func(tk protocol.Task) bool { return tk.State == protocol.TaskCancelled })
	if end.Message != "cancelled on request" {
		t.Fatalf("a's task ended %+v, want cancelled on request", end)
	}
	b.WaitTask(t, id, "cancelled on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskCancelled })
	if f := b.waitFinals(t, id); len(f) != 1 || f[0].State != protocol.TaskCancelled {
		t.Fatalf("final events %+v, want one, cancelled", f)
	}
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		if states := b.taskEvents(t, id); len(finals(states)) != 1 || finals(states)[0].State != protocol.TaskCancelled {
			return fmt.Errorf("b's events of the task: %+v, want it to end cancelled", states)
		}
		return nil
	})

	// A finished task of A: B answers 409 as A does, from its record.
	b.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/cancel", "")
	b.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":5}`)

	// A task no server has: 404 everywhere, for every request.
	for _, n := range []*clusterNode{a, b} {
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/tnosuchtask", "")
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodPost, "/v1/tasks/tnosuchtask/cancel", "")
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodPost, "/v1/tasks/tnosuchtask/progress", `{"done":1}`)
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/tnosuchtask/events", "")
		n.wantTaskError(t, http.StatusNotFound, protocol.CodeNotFound, http.MethodGet, "/v1/tasks/no.such..key>/events", "")
	}
}

func TestClusterTasksExternalTaskSucceedsThroughAnotherServer(t *testing.T) {
	_, a, b := startTaskPair(t)
	id := a.StartTask(t, `{"kind":"external","name":"copy"}`).ID
	b.WaitTask(t, id, "seen on b", func(protocol.Task) bool { return true })
	b.Report(t, id, `{"percent":50}`)
	got := b.Report(t, id, `{"state":"succeeded","message":"all copied"}`)
	if got.State != protocol.TaskSucceeded || got.Percent != 100 {
		t.Fatalf("final report through b answered %+v", got)
	}
	a.WaitTask(t, id, "succeeded on a", func(tk protocol.Task) bool { return tk.State == protocol.TaskSucceeded })
	b.WaitTask(t, id, "succeeded on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskSucceeded })
	if f := a.waitFinals(t, id); len(f) != 1 {
		t.Fatalf("final events %+v, want one", f)
	}
}

func TestClusterTasksDemoTaskCancelledFromAnotherServer(t *testing.T) {
	_, a, b := startTaskPair(t)
	id := a.StartTask(t, `{"kind":"demo","name":"long","total":100000,"interval":"10ms"}`).ID

	// Its progress reaches B through the record.
	b.WaitTask(t, id, "making progress on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Done >= 3 })
	// A demo reports its own progress, wherever the report goes.
	b.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/progress", `{"done":1}`)

	b.CancelTask(t, id)
	end := a.WaitTask(t, id, "cancelled on a", func(tk protocol.Task) bool { return tk.State.Final() })
	if end.State != protocol.TaskCancelled {
		t.Fatalf("a's demo ended %+v, want cancelled", end)
	}
	b.WaitTask(t, id, "cancelled on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskCancelled })
	if f := b.waitFinals(t, id); len(f) != 1 {
		t.Fatalf("final events %+v, want one", f)
	}
}

func TestClusterTasksNewServerLeavesTheOthersTasksAlone(t *testing.T) {
	ns := natstest.Start(t)
	prefix := "t" + server.NewEpoch()
	a := startTaskNode(t, ns.URL(), prefix, 0, steadyTTL)
	id := a.StartTask(t, `{"kind":"external","name":"ongoing"}`).ID
	a.WaitTask(t, id, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })

	// A server that starts (or restarts) on the same NATS takes back
	// nothing of another's.
	c := startTaskNode(t, ns.URL(), prefix, 1, steadyTTL)
	if tk, status := c.getTask(t, id); status != http.StatusOK || tk.State != protocol.TaskRunning {
		t.Fatalf("the new server shows %d %+v, want a's task running", status, tk)
	}
	c.Report(t, id, `{"done":1}`)
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
	ext := a.StartTask(t, `{"kind":"external","name":"ext"}`).ID
	demo := a.StartTask(t, `{"kind":"demo","name":"demo","total":100000,"interval":"10ms"}`).ID
	done := a.StartTask(t, `{"kind":"external","name":"done"}`).ID
	a.Report(t, done, `{"state":"succeeded"}`)
	for _, id := range []string{ext, demo} {
		b.WaitTask(t, id, "running on b", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
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
			tk := n.WaitTask(t, id, "failed on "+n.URL, func(tk protocol.Task) bool { return tk.State.Final() })
			if tk.State != protocol.TaskFailed || !strings.Contains(tk.Message, "is gone") || tk.Finished == nil {
				t.Fatalf("%s shows %+v, want failed: its server is gone", n.URL, tk)
			}
		}
		b.waitFinals(t, id)
	}
	// The finished task is still listed, kept by a survivor.
	if tk, ok := listed(c.Tasks(t), done); !ok || tk.State != protocol.TaskSucceeded {
		t.Fatalf("c lists %+v, want the finished task %s", c.Tasks(t), done)
	}
	// Exactly once: however many reaping rounds B and C go through, each
	// task has one final event.
	testwait.Holds(t, 2*goneTTL, 50*time.Millisecond, func() error {
		for _, id := range []string{ext, demo} {
			if f := finals(b.streamTask(t, id)); len(f) != 1 {
				return fmt.Errorf("task %s: final events %+v, want one", id, f)
			}
		}
		if f := finals(b.streamTask(t, done)); len(f) != 1 || f[0].State != protocol.TaskSucceeded {
			return fmt.Errorf("finished task %s: final events %+v, want its own one", done, f)
		}
		return nil
	})
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
	ns, a, b := startTaskPair(t)
	id := a.StartTask(t, `{"kind":"external","name":"ext"}`).ID
	b.WaitTask(t, id, "seen on b", func(protocol.Task) bool { return true })

	ns.Stop()
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		if b.Store.Conn().IsConnected() {
			return errors.New("b still connected to a stopped NATS")
		}
		return nil
	})
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
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		if a := b.Post(t, "/v1/tasks/"+id+"/progress", `{"done":2}`); a.Status != http.StatusOK {
			return fmt.Errorf("a report through b after NATS came back: %d %s", a.Status, a.Body)
		}
		return nil
	})
	if tk, _ := a.getTask(t, id); tk.Done != 2 {
		t.Fatalf("a shows %+v, want done 2", tk)
	}
}

// Tasks that belong to someone, across servers on one NATS: a start's
// idempotency key holds on every server, a watcher on another server keeps
// a task started with cancel_unwatched, and no server tells a subscriber
// of a task it may not see.

// startKeyed sends a start with an Idempotency-Key and returns the status
// and the task of a 2xx answer.
func (n *clusterNode) startKeyed(t testing.TB, body, key string) (int, protocol.Task) {
	t.Helper()
	a := n.Post(t, "/v1/tasks", body, protocol.IdempotencyKeyHeader, key)
	var tk protocol.Task
	if a.Status < 300 {
		a.JSON(t, &tk)
	}
	return a.Status, tk
}

func TestClusterTasksIdempotencyKeyOnEveryServer(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	a, b := nodes[0], nodes[1]
	const body = `{"kind":"external","name":"once","user":"ann"}`
	status, first := a.startKeyed(t, body, "k:1")
	if status != http.StatusCreated {
		t.Fatalf("first start on a: %d", status)
	}
	if status, again := b.startKeyed(t, body, "k:1"); status != http.StatusOK || again.ID != first.ID {
		t.Fatalf("the start again on b: %d, task %s; want 200 and %s", status, again.ID, first.ID)
	}
	if status, _ := b.startKeyed(t, `{"kind":"external","name":"other","user":"ann"}`, "k:1"); status != http.StatusConflict {
		t.Fatalf("another start with the key on b: %d; want 409", status)
	}
	// Starts with one key on both servers at once make one task. A start
	// that finds the key claimed by one still under way on the other
	// server is told to send it again in a moment (503), as a client does.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			gt := pushdtest.GoTB{TB: t}
			testwait.Until(gt, pushdtest.Timeout, 50*time.Millisecond, func() error {
				status, tk := nodes[i%2].startKeyed(gt, body, "k:2")
				switch status {
				case http.StatusCreated, http.StatusOK:
					ids[i] = tk.ID
					return nil
				case http.StatusServiceUnavailable:
					return fmt.Errorf("start %d: still 503", i)
				}
				gt.Fatalf("start %d: %d; want 201, 200 or 503", i, status)
				return nil
			})
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("starts with one key on two servers made tasks %v; want one", ids)
		}
	}
}

func TestClusterTasksWatcherOnAnotherServerKeepsTheTask(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	a, b := nodes[0], nodes[1]
	tk := a.StartTask(t, `{"kind":"demo","total":1000,"interval":"100ms","cancel_unwatched":"1s"}`)
	w := b.Watch(t, pushdtest.WS, pushdtest.TaskPath(tk.ID), pushdtest.SubOptions{})
	// Watched on b alone, it runs well past its second.
	w.WaitFor(t, "progress past 2.5 s", func(evs []protocol.Event) bool {
		return tasktest.Seen(evs, tk.ID, func(tk protocol.Task) bool { return tk.Done >= 25 })
	})
	w.Stop()
	left := time.Now()
	got := a.WaitTask(t, tk.ID, "ended", func(tk protocol.Task) bool { return tk.State.Final() })
	if got.State != protocol.TaskCancelled || got.Message != protocol.MessageUnwatched {
		t.Fatalf("ended %s; want cancelled, %q", tasktest.String(got), protocol.MessageUnwatched)
	}
	if gap := got.Finished.Sub(left); gap < time.Second {
		t.Errorf("cancelled %s after the watcher on b left; want 1s or more", gap)
	}
}

func TestClusterTasksScopesOnEveryServer(t *testing.T) {
	secret := []byte("a-test-secret-of-32-bytes-length")
	ns := natstest.Start(t)
	nodes := startCluster(t, ns.URL(), 2, natsstore.Options{Prefix: "t" + server.NewEpoch()}, func(t *testing.T, i int, st *natsstore.Store, cfg *server.Config) {
		withTasks(steadyTTL)(t, i, st, cfg)
		cfg.AuthSecret = secret
	})
	a, b := nodes[0], nodes[1]
	token := func(user string, c server.Claims) string {
		tok, err := server.MintToken(secret, user, c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return "token=" + tok
	}
	ann := token("ann", server.Claims{Rooms: []string{"ops"}, Tasks: true})
	bob := token("bob", server.Claims{Rooms: []string{"lobby"}, Tasks: true})
	annW := b.Watch(t, pushdtest.WS, "/v1/tasks/events?"+ann, pushdtest.SubOptions{})
	bobW := b.Watch(t, pushdtest.WS, "/v1/tasks/events?"+bob, pushdtest.SubOptions{})
	start := func(body string) protocol.Task {
		var tk protocol.Task
		a.Expect(t, http.MethodPost, "/v1/tasks?"+ann, body, http.StatusCreated, &tk)
		return tk
	}
	private := start(`{"kind":"external","private":true}`)
	ops := start(`{"kind":"external","room":"ops"}`)
	last := start(`{"kind":"external","name":"for all"}`)
	annW.WaitFor(t, "ann's three tasks", func(evs []protocol.Event) bool {
		return len(tasktest.EventsOf(evs, private.ID)) > 0 && len(tasktest.EventsOf(evs, ops.ID)) > 0 && len(tasktest.EventsOf(evs, last.ID)) > 0
	})
	evs := bobW.WaitFor(t, "the task for all", func(evs []protocol.Event) bool { return len(tasktest.EventsOf(evs, last.ID)) > 0 })
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID != last.ID {
			t.Errorf("bob's subscription on b told of a task he may not see: %+v", *ev.Task)
		}
	}
	// Nor do the other answers of b.
	for _, id := range []string{private.ID, ops.ID} {
		if a := b.Get(t, "/v1/tasks/"+id+"?"+bob); a.Status != http.StatusNotFound {
			t.Errorf("GET task %s as bob on b: %d %s; want 404", id, a.Status, a.Body)
		}
		if a := b.Post(t, "/v1/tasks/"+id+"/cancel?"+bob, ""); a.Status != http.StatusNotFound {
			t.Errorf("cancel task %s as bob on b: %d %s; want 404", id, a.Status, a.Body)
		}
	}
	var l protocol.TaskList
	if b.Expect(t, http.MethodGet, "/v1/tasks?"+bob, "", http.StatusOK, &l); len(l.Tasks) != 1 || l.Tasks[0].ID != last.ID {
		t.Errorf("bob lists on b: %+v; want the task for all alone", l.Tasks)
	}
	// The owner's rule holds on b too: bob sees the task for all, but it
	// is ann's to cancel.
	if a := b.Post(t, "/v1/tasks/"+last.ID+"/cancel?"+bob, ""); a.Status != http.StatusForbidden || !strings.Contains(string(a.Body), "ann's") {
		t.Errorf("cancel ann's task as bob on b: %d %s; want 403 saying it is ann's", a.Status, a.Body)
	}
	b.Expect(t, http.MethodPost, "/v1/tasks/"+last.ID+"/cancel?"+ann, "", http.StatusAccepted, nil)
}
