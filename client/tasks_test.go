package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks"
)

func startTask(t *testing.T, c *client.Client, spec client.TaskSpec) *protocol.Task {
	t.Helper()
	task, err := c.StartTask(context.Background(), spec)
	if err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	return task
}

func followCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
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
	s := pushdtest.Start(t, server.Config{})
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
	s := pushdtest.Start(t, server.Config{})
	c := newClient(t, s, "alice")
	task := startTask(t, c, client.TaskSpec{Kind: "demo", Params: map[string]any{"total": 1, "interval": "1ms"}})
	ctx := followCtx(t)
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
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
	s := pushdtest.Start(t, server.Config{})
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
	s := pushdtest.Start(t, server.Config{})
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

	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
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
	s := pushdtest.Start(t, server.Config{})
	c := newClient(t, s, "alice")
	ctx := context.Background()
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
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		if all := seen.all(); len(all) == 0 || all[0].Done != 2 {
			return fmt.Errorf("progress seen %+v; want the look's done 2 first", all)
		}
		return nil
	})
	s.Report(t, task.ID, `{"done":3,"state":"succeeded"}`)
	if err, _ := testwait.Recv(t, pushdtest.Timeout, done, "FollowTask's end"); err != nil {
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
