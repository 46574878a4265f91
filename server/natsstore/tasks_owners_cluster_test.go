package natsstore_test

// Tasks that belong to someone, across servers on one NATS: a start's
// idempotency key holds on every server, a watcher on another server keeps
// a task started with cancel_unwatched, and no server tells a subscriber
// of a task it may not see.

import (
	"fmt"
	"net/http"
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
