package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks"
)

// tooManyTasks fails the test unless a start is refused with 429 and
// Retry-After, and returns the refusal's message.
func tooManyTasks(t *testing.T, r *pushdtest.Remote, body string, header ...string) string {
	t.Helper()
	a := r.Post(t, "/v1/tasks", body, header...)
	e := a.WantError(t, http.StatusTooManyRequests, protocol.CodeRateLimited)
	if a.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", a.Header)
	}
	return e.Message
}

// Task starts have a per-user rate with a burst; a start that is refused
// for another reason, or repeated under its Idempotency-Key, costs
// nothing.
func TestTaskStartRate(t *testing.T) {
	s := authServer(t, server.Config{Limits: server.Limits{TaskRate: 0.001, TaskBurst: 3}})
	claims := server.Claims{Rooms: []string{"*"}, Tasks: true}
	ann := s.WithHeader("Authorization", "Bearer "+mint(t, "ann", claims))
	bob := s.WithHeader("Authorization", "Bearer "+mint(t, "bob", claims))

	ann.Post(t, "/v1/tasks", `{"kind":"demo","total":0}`).WantError(t, http.StatusBadRequest, protocol.CodeInvalidParam)
	ann.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"external","name":"once"}`, http.StatusCreated, nil)
	keyed := ann.WithHeader(protocol.IdempotencyKeyHeader, "k1")
	keyed.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"external","name":"keyed"}`, http.StatusCreated, nil)
	keyed.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"external","name":"keyed"}`, http.StatusOK, nil)
	ann.StartTask(t, `{"kind":"external","name":"third"}`)
	if msg := tooManyTasks(t, ann, `{"kind":"external","name":"fourth"}`); !strings.Contains(msg, "ann") {
		t.Errorf("the refusal %q does not name the user", msg)
	}
	bob.StartTask(t, `{"kind":"external","name":"bob's own"}`)
}

// The queue of tasks waiting for a run slot is bounded; external tasks
// take no slot and count against a bound of their own.
func TestTaskQueueAndExternalBounds(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Tasks: tasks.Config{MaxRunning: 1, MaxQueued: 2, MaxExternal: 2}})
	long := `{"kind":"demo","total":1000,"interval":"1h"}`
	s.StartTask(t, long) // runs
	queued := s.StartTask(t, long)
	s.StartTask(t, long)
	if msg := tooManyTasks(t, s.Remote, long); !strings.Contains(msg, "2 tasks are waiting") {
		t.Errorf("a start over the queue: %q", msg)
	}
	s.CancelTask(t, queued.ID)
	s.StartTask(t, long)

	ext := s.StartTask(t, `{"kind":"external","name":"one"}`)
	s.StartTask(t, `{"kind":"external","name":"two"}`)
	if msg := tooManyTasks(t, s.Remote, `{"kind":"external","name":"three"}`); !strings.Contains(msg, "2 external tasks") {
		t.Errorf("a start over the external bound: %q", msg)
	}
	s.Report(t, ext.ID, `{"state":"succeeded"}`)
	s.WaitTask(t, ext.ID, "its end", func(tk protocol.Task) bool { return tk.State.Final() })
	s.StartTask(t, `{"kind":"external","name":"three"}`)
}
