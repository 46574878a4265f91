package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks"
)

// startTask starts a task of spec through c, failing the test on error.
func startTask(t *testing.T, c *client.Client, spec client.TaskSpec) *protocol.Task {
	t.Helper()
	task, err := c.StartTask(t.Context(), spec)
	if err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	return task
}

// followCtx returns a context for following a task: it ends after
// waitTimeout, or with the test.
func followCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestFollowTaskUntilItSucceeds(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := pushdtest.Start(t, server.Config{Tasks: tasks.Config{MinInterval: time.Millisecond}})
			c := newClient(t, s, "alice")
			task := startTask(t, c, client.TaskSpec{Kind: "demo", Name: "count to five", Params: map[string]any{"total": 5, "interval": "20ms"}})
			if task.ID == "" || task.Kind != "demo" || task.Name != "count to five" || task.State.Final() {
				t.Fatalf("StartTask = %+v", task)
			}
			var seen record[protocol.Task]
			opts := client.FollowOptions{SubscribeOptions: tc.opts, OnProgress: seen.add}
			final, err := c.FollowTask(followCtx(t), task.ID, opts)
			if err != nil {
				t.Fatalf("FollowTask: %v", err)
			}
			if final.ID != task.ID || final.State != protocol.TaskSucceeded || final.Done != 5 || final.Total != 5 || final.Finished == nil {
				t.Fatalf("final %+v", final)
			}
			all := seen.all()
			if len(all) < 2 || all[len(all)-1].State != protocol.TaskSucceeded {
				t.Fatalf("progress seen: %+v", all)
			}
			for i := 1; i < len(all); i++ {
				if all[i].Done < all[i-1].Done {
					t.Fatalf("progress went back: %d after %d", all[i].Done, all[i-1].Done)
				}
			}
		})
	}
}

func TestFollowTaskThatFails(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	task := startTask(t, c, client.TaskSpec{Kind: "demo", Params: map[string]any{"total": 10, "interval": "5ms", "fail_at": 3}})
	final, err := c.FollowTask(followCtx(t), task.ID, client.FollowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if final.State != protocol.TaskFailed || !strings.Contains(final.Message, "step 3") {
		t.Fatalf("final %+v, want failed at step 3", final)
	}
}

func TestFollowTaskAlreadyFinished(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	task := startTask(t, c, client.TaskSpec{Kind: "demo", Params: map[string]any{"total": 1, "interval": "1ms"}})
	ctx := followCtx(t)
	waitFor(t, func() error {
		if got, err := c.GetTask(ctx, task.ID); err != nil || !got.State.Final() {
			return fmt.Errorf("the task has not ended: %+v, %v", got, err)
		}
		return nil
	})
	final, err := c.FollowTask(ctx, task.ID, client.FollowOptions{})
	if err != nil || final.State != protocol.TaskSucceeded {
		t.Fatalf("FollowTask = %+v, %v", final, err)
	}
}

func TestCancelTask(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	task := startTask(t, c, client.TaskSpec{Kind: "demo", Params: map[string]any{"total": 100000, "interval": "10ms"}})
	ctx := followCtx(t)

	type result struct {
		task protocol.Task
		err  error
	}
	done := make(chan result, 1)
	running := make(chan struct{})
	var once sync.Once
	go func() {
		final, err := c.FollowTask(ctx, task.ID, client.FollowOptions{OnProgress: func(t protocol.Task) {
			if t.State == protocol.TaskRunning {
				once.Do(func() { close(running) })
			}
		}})
		done <- result{final, err}
	}()
	select {
	case <-running:
	case <-ctx.Done():
		t.Fatal("the task never ran")
	}
	got, err := c.CancelTask(ctx, task.ID)
	if err != nil || got.ID != task.ID {
		t.Fatalf("CancelTask = %+v, %v", got, err)
	}
	r := <-done
	if r.err != nil || r.task.State != protocol.TaskCancelled {
		t.Fatalf("FollowTask after cancel = %+v, %v", r.task, r.err)
	}
	_, err = c.CancelTask(ctx, task.ID)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusConflict || pe.Code != protocol.CodeConflict {
		t.Fatalf("cancelling a finished task: %v, want 409 conflict", err)
	}
}

func TestFollowTaskEndsWithItsContext(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	task := startTask(t, c, client.TaskSpec{Kind: "external"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// Cancelled once following has begun: the subscription ends with it.
		_, err := c.FollowTask(ctx, task.ID, client.FollowOptions{OnProgress: func(protocol.Task) { cancel() }})
		done <- err
	}()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowTask = %v, want context.Canceled", err)
	}
}

func TestExternalTaskReportsProgress(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Tasks: tasks.Config{MinInterval: time.Millisecond}})
	c := newClient(t, s, "alice")
	ctx := followCtx(t)
	task := startTask(t, c, client.TaskSpec{Kind: "external", Name: "backup", Params: map[string]any{"total": 3}})

	sub := subscribe(t, c, client.Task(task.ID), client.SubscribeOptions{Since: "0"})
	followed := make(chan protocol.Task, 1)
	go func() {
		final, _ := c.FollowTask(ctx, task.ID, client.FollowOptions{})
		followed <- final
	}()

	waitFor(t, func() error {
		if got, err := c.GetTask(ctx, task.ID); err != nil || got.State != protocol.TaskRunning {
			return fmt.Errorf("the task is not running: %+v, %v", got, err)
		}
		return nil
	})
	for i := int64(1); i <= 3; i++ {
		got, err := c.ReportProgress(ctx, task.ID, client.Progress{Done: &i, Message: "copied one"})
		if err != nil {
			t.Fatalf("ReportProgress(%d): %v", i, err)
		}
		if got.Done != i || got.Message != "copied one" {
			t.Fatalf("after report %d: %+v", i, got)
		}
	}
	got, err := c.ReportProgress(ctx, task.ID, client.Progress{State: protocol.TaskSucceeded})
	if err != nil || got.State != protocol.TaskSucceeded {
		t.Fatalf("final report: %+v, %v", got, err)
	}
	if final := <-followed; final.State != protocol.TaskSucceeded || final.Done != 3 {
		t.Fatalf("FollowTask = %+v", final)
	}

	// The subscription to the one task saw it through, in order.
	var last protocol.Task
	for last.State != protocol.TaskSucceeded {
		ev := recv(t, sub)
		if ev.Type != protocol.TypeProgress || ev.Task == nil || ev.Task.ID != task.ID || ev.Stream != protocol.TasksStream {
			t.Fatalf("event %+v", ev)
		}
		if ev.Task.Done < last.Done {
			t.Fatalf("done went from %d to %d", last.Done, ev.Task.Done)
		}
		last = *ev.Task
	}

	list, err := c.ListTasks(ctx)
	if err != nil || len(list) != 1 || list[0].ID != task.ID || list[0].Name != "backup" {
		t.Fatalf("ListTasks = %+v, %v", list, err)
	}
	one, err := c.GetTask(ctx, task.ID)
	if err != nil || one.State != protocol.TaskSucceeded {
		t.Fatalf("GetTask = %+v, %v", one, err)
	}

	pct := 50.0
	_, err = c.ReportProgress(ctx, task.ID, client.Progress{Percent: &pct})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeConflict {
		t.Fatalf("report on a finished task: %v, want conflict", err)
	}
}

func TestStartTaskErrors(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	ctx := t.Context()
	_, err := c.StartTask(ctx, client.TaskSpec{Kind: "no-such-kind"})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidParam || !strings.HasPrefix(err.Error(), "start no-such-kind task: ") {
		t.Fatalf("unknown kind: %v, want invalid_param", err)
	}
	_, err = c.StartTask(ctx, client.TaskSpec{Kind: "demo", Params: map[string]any{"kind": "other"}})
	if err == nil || errors.As(err, &pe) {
		t.Fatalf("params with kind: %v, want a local error", err)
	}
	if list, err := c.ListTasks(ctx); err != nil || len(list) != 0 {
		t.Fatalf("ListTasks after refusals = %+v, %v; want none", list, err)
	}
	_, err = c.FollowTask(ctx, "nope", client.FollowOptions{})
	if !errors.As(err, &pe) || pe.Code != protocol.CodeNotFound {
		t.Fatalf("FollowTask of an unknown task: %v, want not_found", err)
	}
}

// FollowTask's look at the task comes after the cursor its subscription
// starts from: events between the two, older than what the look saw, are
// not reported after it, so progress never goes back.
func TestFollowTaskSkipsEventsOlderThanItsLook(t *testing.T) {
	var id atomic.Value
	var once sync.Once
	var s *pushdtest.Server
	s = pushdtest.Start(t, server.Config{Tasks: tasks.Config{MinInterval: time.Millisecond}}, pushdtest.Wrap(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if want, _ := id.Load().(string); want != "" && r.Method == http.MethodGet && r.URL.Path == "/v1/tasks/"+want {
				// Progress lands between FollowTask's cursor and its look.
				once.Do(func() {
					s.Report(pushdtest.GoTB{TB: t}, want, `{"done":1}`)
					s.Report(pushdtest.GoTB{TB: t}, want, `{"done":2}`)
				})
			}
			h.ServeHTTP(w, r)
		})
	}))
	c := newClient(t, s, "alice")
	task := startTask(t, c, client.TaskSpec{Kind: "external", Params: map[string]any{"total": 3}})
	id.Store(task.ID)
	var seen record[protocol.Task]
	done := make(chan error, 1)
	go func() {
		_, err := c.FollowTask(followCtx(t), task.ID, client.FollowOptions{OnProgress: seen.add})
		done <- err
	}()
	waitFor(t, func() error {
		if all := seen.all(); len(all) == 0 || all[0].Done != 2 {
			return fmt.Errorf("progress seen %+v; want the look's done 2 first", all)
		}
		return nil
	})
	s.Report(t, task.ID, `{"done":3,"state":"succeeded"}`)
	if err, _ := received(t, done, "FollowTask's end"); err != nil {
		t.Fatal(err)
	}
	all := seen.all()
	for i := 1; i < len(all); i++ {
		if all[i].Done < all[i-1].Done {
			t.Fatalf("progress went back: %d after %d (seen %+v)", all[i].Done, all[i-1].Done, all)
		}
	}
	if last := all[len(all)-1]; last.State != protocol.TaskSucceeded {
		t.Fatalf("last seen %+v; want succeeded", last)
	}
}

// A subscription to one task's stream ends when the server ends the stream
// after the task's final event: no reconnect, Err nil.

// checkEnded checks that the subscription ended by itself, as the server
// ended the stream: closed with Err nil, never reconnecting.
func checkEnded(t *testing.T, sub *client.Subscription, log *record[client.StateChange]) {
	t.Helper()
	received(t, sub.Done(), "the subscription's end")
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
			srv := startPushd(t)
			c := newClient(t, srv, "alice")
			task := startTask(t, c, client.TaskSpec{Kind: "external", Params: map[string]any{"total": 2}})
			var log record[client.StateChange]
			opts := tc.opts
			opts.OnState = log.add
			sub := c.Subscribe(t.Context(), client.Task(task.ID), opts)
			defer sub.Close()
			waitFor(t, func() error {
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
	srv := startPushd(t)
	c := newClient(t, srv, "alice")
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
	srv := startPushd(t, pushdtest.Wrap(func(h http.Handler) http.Handler {
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
	c := newClient(t, srv, "alice")
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

// keyLog stands in front of a server, notes the Idempotency-Key of every
// start, and answers the first lose starts with a 503 after the server
// has taken them, as a proxy that lost the answer would.
type keyLog struct {
	mu   sync.Mutex
	keys []string
	lose int
}

func (l *keyLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/tasks" {
			h.ServeHTTP(w, r)
			return
		}
		l.mu.Lock()
		l.keys = append(l.keys, r.Header.Get("Idempotency-Key"))
		lose := l.lose > 0
		l.lose--
		l.mu.Unlock()
		if !lose {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "bad gateway", http.StatusBadGateway)
	})
}

func (l *keyLog) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.keys...)
}

func TestStartTaskRetriesWithItsKey(t *testing.T) {
	log := &keyLog{lose: 2}
	s := startPushd(t, pushdtest.Wrap(log.wrap))
	c, err := client.New(s.URL, client.WithUser("ann"))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Name: "once", Room: "ops", CancelUnwatched: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Owner != "ann" || tk.Room != "ops" || tk.CancelUnwatched != "1m0s" {
		t.Errorf("started %+v; want ann's, in ops, cancelled after a minute unwatched", tk)
	}
	keys := log.seen()
	if len(keys) != 3 || len(keys[0]) != 32 || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("the three tries had the keys %q; want one key of 128 bits in hex", keys)
	}
	var l protocol.TaskList
	s.Expect(t, http.MethodGet, "/v1/tasks", "", http.StatusOK, &l)
	if len(l.Tasks) != 1 || l.Tasks[0].ID != tk.ID {
		t.Errorf("the server has %d tasks; want one, %s", len(l.Tasks), tk.ID)
	}
	// A key of the caller's own, again: the same task.
	again, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Name: "mine", Key: "mine:1"})
	if err != nil {
		t.Fatal(err)
	}
	if same, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Name: "mine", Key: "mine:1"}); err != nil || same.ID != again.ID {
		t.Errorf("a start with the same key: %v, %v; want task %s", same, err, again.ID)
	}
	if _, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Key: "no spaces please"}); err == nil {
		t.Error("a start with a bad key went through")
	}
	if _, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Params: map[string]any{"room": "x"}}); err == nil {
		t.Error("a start with room in Params went through")
	}
}
