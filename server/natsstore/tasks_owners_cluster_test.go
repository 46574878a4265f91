package natsstore_test

// Tasks that belong to someone, across servers on one NATS: a start's
// idempotency key holds on every server, a watcher on another server keeps
// a task started with cancel_unwatched, and no server tells a subscriber
// of a task it may not see.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
	"github.com/pushd/push/server/tasks/tasktest"
)

// startKeyed sends a start with an Idempotency-Key and returns the status
// and the task of a 2xx answer.
func (n *clusterNode) startKeyed(t testing.TB, body, key string) (int, protocol.Task) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL+"/v1/tasks", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tk protocol.Task
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(b, &tk); err != nil {
			t.Fatalf("start on %s: %v in %s", n.URL, err, b)
		}
	}
	return resp.StatusCode, tk
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
	// Starts with one key on both servers at once make one task.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			status, tk := nodes[i%2].startKeyed(pushdtest.GoTB{TB: t}, body, "k:2")
			if status != http.StatusCreated && status != http.StatusOK {
				t.Errorf("start %d: %d", i, status)
			}
			ids[i] = tk.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("starts with one key on two servers made tasks %v; want one", ids)
		}
	}
}

// taskWatch is a WebSocket subscription to a tasks path, keeping what it
// reads.
type taskWatch struct {
	mu   sync.Mutex
	evs  []protocol.Event
	drop func()
}

// watchTasks subscribes over WebSocket to path (with its query) on n until
// drop or the end of the test.
func (n *clusterNode) watchTasks(t *testing.T, path string) *taskWatch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+path, &websocket.DialOptions{HTTPClient: n.client})
	if err != nil {
		t.Fatalf("subscribe to %s on %s: %v", path, n.URL, err)
	}
	w := &taskWatch{}
	readCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := c.Read(readCtx)
			if err != nil {
				return
			}
			var ev protocol.Event
			if json.Unmarshal(b, &ev) == nil {
				w.mu.Lock()
				w.evs = append(w.evs, ev)
				w.mu.Unlock()
			}
		}
	}()
	var once sync.Once
	w.drop = func() {
		once.Do(func() {
			_ = c.CloseNow()
			stop()
			<-done
		})
	}
	t.Cleanup(w.drop)
	return w
}

// waitFor waits until cond holds for what w has read, and returns it.
func (w *taskWatch) waitFor(t *testing.T, what string, cond func([]protocol.Event) bool) []protocol.Event {
	t.Helper()
	var evs []protocol.Event
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		w.mu.Lock()
		evs = append([]protocol.Event(nil), w.evs...)
		w.mu.Unlock()
		if !cond(evs) {
			return fmt.Errorf("no %s; read %s", what, tasktest.EventsString(evs))
		}
		return nil
	})
	return evs
}

func TestClusterTasksWatcherOnAnotherServerKeepsTheTask(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	a, b := nodes[0], nodes[1]
	tk := a.startTask(t, `{"kind":"demo","total":1000,"interval":"100ms","cancel_unwatched":"1s"}`)
	w := b.watchTasks(t, "/v1/tasks/"+tk.ID+"/events")
	// Watched on b alone, it runs well past its second.
	w.waitFor(t, "progress past 2.5 s", func(evs []protocol.Event) bool {
		return tasktest.Seen(evs, tk.ID, func(tk protocol.Task) bool { return tk.Done >= 25 })
	})
	w.drop()
	left := time.Now()
	got := a.waitTask(t, tk.ID, "ended", func(tk protocol.Task) bool { return tk.State.Final() })
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
	annW := b.watchTasks(t, "/v1/tasks/events?"+ann)
	bobW := b.watchTasks(t, "/v1/tasks/events?"+bob)
	private := a.wantTask(t, http.StatusCreated, http.MethodPost, "/v1/tasks?"+ann, `{"kind":"external","private":true}`)
	ops := a.wantTask(t, http.StatusCreated, http.MethodPost, "/v1/tasks?"+ann, `{"kind":"external","room":"ops"}`)
	last := a.wantTask(t, http.StatusCreated, http.MethodPost, "/v1/tasks?"+ann, `{"kind":"external","name":"for all"}`)
	annW.waitFor(t, "ann's three tasks", func(evs []protocol.Event) bool {
		return len(tasktest.EventsOf(evs, private.ID)) > 0 && len(tasktest.EventsOf(evs, ops.ID)) > 0 && len(tasktest.EventsOf(evs, last.ID)) > 0
	})
	evs := bobW.waitFor(t, "the task for all", func(evs []protocol.Event) bool { return len(tasktest.EventsOf(evs, last.ID)) > 0 })
	for _, ev := range evs {
		if ev.Task != nil && ev.Task.ID != last.ID {
			t.Errorf("bob's subscription on b told of a task he may not see: %+v", *ev.Task)
		}
	}
	// Nor do the other answers of b.
	for _, id := range []string{private.ID, ops.ID} {
		if status, body := b.do(t, http.MethodGet, "/v1/tasks/"+id+"?"+bob, ""); status != http.StatusNotFound {
			t.Errorf("GET task %s as bob on b: %d %s; want 404", id, status, body)
		}
		if status, body := b.do(t, http.MethodPost, "/v1/tasks/"+id+"/cancel?"+bob, ""); status != http.StatusNotFound {
			t.Errorf("cancel task %s as bob on b: %d %s; want 404", id, status, body)
		}
	}
	var l protocol.TaskList
	status, body := b.do(t, http.MethodGet, "/v1/tasks?"+bob, "")
	if err := json.Unmarshal(body, &l); status != http.StatusOK || err != nil || len(l.Tasks) != 1 || l.Tasks[0].ID != last.ID {
		t.Errorf("bob lists on b: %d %s; want the task for all alone", status, body)
	}
	// The owner's rule holds on b too: bob sees the task for all, but it
	// is ann's to cancel.
	if status, body := b.do(t, http.MethodPost, "/v1/tasks/"+last.ID+"/cancel?"+bob, ""); status != http.StatusForbidden || !strings.Contains(string(body), "ann's") {
		t.Errorf("cancel ann's task as bob on b: %d %s; want 403 saying it is ann's", status, body)
	}
	b.wantTask(t, http.StatusAccepted, http.MethodPost, "/v1/tasks/"+last.ID+"/cancel?"+ann, "")
}
