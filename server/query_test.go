package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// A query parameter given twice is refused, on every endpoint and before
// any transport is picked; one the endpoint does not know is ignored.
func TestQueryParamRepeated(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{})
	srv.Publish(t, "lobby", "ann", "hi")
	var task protocol.Task
	srv.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"external"}`, http.StatusCreated, &task)
	sse := []string{"Accept", "text/event-stream"}
	ws := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
	for _, c := range []struct {
		method, path string
		header       []string
		param        string
	}{
		{http.MethodGet, "/v1/rooms/lobby/events?since=0&since=1&wait=0", nil, "since"},
		{http.MethodGet, "/v1/rooms/lobby/events?since=0&since=1", sse, "since"},
		{http.MethodGet, "/v1/rooms/lobby/events?user=ann&user=bob", ws, "user"},
		{http.MethodGet, "/v1/rooms/lobby/events?wait=0&wait=1s", nil, "wait"},
		{http.MethodHead, "/v1/rooms/lobby/events?since=0&since=0", nil, "since"},
		{http.MethodGet, "/v1/tasks/events?since=0&since=0&wait=0", nil, "since"},
		{http.MethodGet, "/v1/tasks/" + task.ID + "/events?wait=0&since=0&since=1", nil, "since"},
		{http.MethodGet, "/v1/rooms/lobby/presence?token=a&token=b", nil, "token"},
		{http.MethodGet, "/v1/tasks?zz=1&aa=1&aa=2&zz=2", nil, "aa"}, // the first in sorted order
		{http.MethodGet, "/v1/tasks/" + task.ID + "?x=1&x=1", nil, "x"},
	} {
		a := srv.Request(t, t.Context(), c.method, c.path, "", c.header...)
		if a.Status != http.StatusBadRequest {
			t.Errorf("%s %s: %d %s; want 400", c.method, c.path, a.Status, a.Body)
			continue
		}
		if c.method == http.MethodHead {
			continue // no body
		}
		e := a.Error(t)
		if e.Code != protocol.CodeInvalidParam || !strings.Contains(e.Message, `"`+c.param+`" is given 2 times`) {
			t.Errorf("%s %s: %s %q; want %s naming %s", c.method, c.path, e.Code, e.Message, protocol.CodeInvalidParam, c.param)
		}
	}
	if got := srv.Presence(t, "lobby"); len(got) != 0 {
		t.Errorf("refused subscriptions made %v present", got)
	}

	// Unknown parameters, given once, are ignored.
	evs, _ := srv.Poll(t, "/v1/rooms/lobby/events", "since=0&wait=0&color=blue&v=2")
	if len(evs) != 1 || evs[0].Text != "hi" {
		t.Errorf("a poll with unknown parameters: %s; want the message", pushdtest.Summary(evs))
	}
	srv.Expect(t, http.MethodGet, "/v1/rooms/lobby/presence?color=blue", "", http.StatusOK, nil)
}
