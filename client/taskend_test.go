package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// A subscription to one task's stream ends when the server ends the stream
// after the task's final event: no reconnect, Err nil.

// taskEndClient is a client of srv for these tests.
func taskEndClient(t *testing.T, srv *pushdtest.Server) *client.Client {
	t.Helper()
	c, err := client.New(srv.URL, client.WithHTTPClient(srv.Client), client.WithUser("alice"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkEnded checks that the subscription ended by itself, as the server
// ended the stream: closed with Err nil, never reconnecting.
func checkEnded(t *testing.T, sub *client.Subscription, log *record[client.StateChange]) {
	t.Helper()
	testwait.Recv(t, pushdtest.Timeout, sub.Done(), "the subscription's end")
	if err := sub.Err(); err != nil {
		t.Errorf("Err() = %v; want nil once the server ended the stream", err)
	}
	states := log.all()
	for _, sc := range states {
		if sc.State == client.StateReconnecting {
			t.Errorf("the subscription reconnected (%v); the stream had ended", sc.Err)
		}
	}
	if n := len(states); n == 0 || states[n-1].State != client.StateClosed || states[n-1].Err != nil {
		t.Errorf("states %v; want closed without an error last", states)
	}
}

// readAll reads sub's events until Events is closed, failing the test if
// that takes longer than pushdtest.Timeout.
func readAll(t *testing.T, sub *client.Subscription) []protocol.Event {
	t.Helper()
	timer := time.NewTimer(pushdtest.Timeout)
	defer timer.Stop()
	var evs []protocol.Event
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-timer.C:
			t.Fatalf("the subscription did not end; it got %s", pushdtest.Summary(evs))
		}
	}
}

func TestSubscribeTaskEndsAfterFinalEvent(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			srv := pushdtest.Start(t, server.Config{})
			c := taskEndClient(t, srv)
			task := startTask(t, c, client.TaskSpec{Kind: "external", Params: map[string]any{"total": 2}})
			var log record[client.StateChange]
			opts := tc.opts
			opts.OnState = log.add
			sub := c.Subscribe(t.Context(), client.Task(task.ID), opts)
			defer sub.Close()
			testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
				if !log.has(func(sc client.StateChange) bool { return sc.State == client.StateConnected }) {
					return errors.New("not connected")
				}
				return nil
			})
			srv.Expect(t, http.MethodPost, "/v1/tasks/"+task.ID+"/progress", `{"done":1}`, http.StatusOK, nil)
			srv.Expect(t, http.MethodPost, "/v1/tasks/"+task.ID+"/progress", `{"state":"succeeded"}`, http.StatusOK, nil)
			evs := readAll(t, sub)
			checkEnded(t, sub, &log)
			if len(evs) == 0 || evs[len(evs)-1].Task.State != protocol.TaskSucceeded {
				t.Fatalf("events %s; want the task's, its success last", pushdtest.Summary(evs))
			}
		})
	}
}

func TestSubscribeTaskAlreadyEnded(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{})
	c := taskEndClient(t, srv)
	task := startTask(t, c, client.TaskSpec{Kind: "external"})
	srv.Expect(t, http.MethodPost, "/v1/tasks/"+task.ID+"/progress", `{"state":"failed","message":"no disk"}`, http.StatusOK, nil)
	final, err := c.Cursor(t.Context(), client.Task(task.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			// From the live end: the final event, then the end.
			var log record[client.StateChange]
			opts := tc.opts
			opts.OnState = log.add
			sub := c.Subscribe(t.Context(), client.Task(task.ID), opts)
			defer sub.Close()
			evs := readAll(t, sub)
			checkEnded(t, sub, &log)
			if len(evs) != 1 || evs[0].Cursor() != final || evs[0].Task.State != protocol.TaskFailed {
				t.Errorf("from the live end: %s; want the final event %s alone", pushdtest.Summary(evs), final)
			}

			// From the final event: the end alone.
			log = record[client.StateChange]{}
			opts.Since = final.String()
			sub = c.Subscribe(t.Context(), client.Task(task.ID), opts)
			defer sub.Close()
			if evs := readAll(t, sub); len(evs) != 0 {
				t.Errorf("since the final event: %s; want none", pushdtest.Summary(evs))
			}
			checkEnded(t, sub, &log)
		})
	}
}

// FollowTask asks for the task again when its stream ends without the
// final state: here the first answer about the task is from before its end
// (as when it ends between FollowTask's look at it and its subscription),
// and the stream, followed from the cursor of the final event, ends at
// once.
func TestFollowTaskStreamEndsWithoutFinalState(t *testing.T) {
	var stale sync.Once
	var id string
	srv := pushdtest.Start(t, server.Config{}, pushdtest.Wrap(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			answered := false
			if r.Method == http.MethodGet && id != "" && r.URL.Path == "/v1/tasks/"+id {
				stale.Do(func() {
					w.Header().Set("Content-Type", "application/json")
					_ = json.NewEncoder(w).Encode(protocol.Task{ID: id, Kind: "external", State: protocol.TaskRunning})
					answered = true
				})
			}
			if !answered {
				h.ServeHTTP(w, r)
			}
		})
	}))
	c := taskEndClient(t, srv)
	task := startTask(t, c, client.TaskSpec{Kind: "external"})
	srv.Expect(t, http.MethodPost, "/v1/tasks/"+task.ID+"/progress", `{"state":"succeeded"}`, http.StatusOK, nil)
	id = task.ID
	var seen []protocol.TaskState
	got, err := c.FollowTask(followCtx(t), task.ID, client.FollowOptions{OnProgress: func(t protocol.Task) { seen = append(seen, t.State) }})
	if err != nil || got.ID != task.ID || got.State != protocol.TaskSucceeded {
		t.Fatalf("FollowTask = %+v, %v; want the task, succeeded", got, err)
	}
	if fmt.Sprint(seen) != "[running succeeded]" {
		t.Errorf("OnProgress saw %v; want the stale running, then succeeded", seen)
	}
}
