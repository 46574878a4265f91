package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// A demo task's total of 0 is refused, not taken as the default.
func TestTaskDemoTotalZero(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{})
	a := srv.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","total":0}`, http.StatusBadRequest, nil)
	e := a.Error(t)
	want := fmt.Sprintf("total must be from 1 to %d, not 0", protocol.DemoMaxTotal)
	if e.Code != protocol.CodeInvalidParam || !strings.Contains(e.Message, want) {
		t.Errorf("total 0: %s %q; want %s saying %q", e.Code, e.Message, protocol.CodeInvalidParam, want)
	}
	var list protocol.TaskList
	srv.Expect(t, http.MethodGet, "/v1/tasks", "", http.StatusOK, &list)
	if len(list.Tasks) != 0 {
		t.Errorf("a refused start made tasks: %+v", list.Tasks)
	}
	// Left out, it is the default.
	var task protocol.Task
	srv.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","interval":"1h"}`, http.StatusCreated, &task)
	if task.Total != 100 {
		t.Errorf("a demo task without a total has %d; want 100", task.Total)
	}
}
