package server_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// The task API over HTTP: start, list, get, cancel, external reports, and
// the errors of each, also as task peers carry them to other servers.
// What watchers see is in tasks_test.go, with the helpers these tests
// share beside pushdtest's.

func TestTaskStartAnswer(t *testing.T) {
	ts := startTaskServer(t, server.Config{})
	var task protocol.Task
	header := ts.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"external","name":"nightly backup","total":7}`, http.StatusCreated, &task).Header
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q; want application/json", ct)
	}
	if loc := header.Get("Location"); loc != "/v1/tasks/"+task.ID {
		t.Errorf("Location %q; want /v1/tasks/%s", loc, task.ID)
	}
	if task.Kind != "external" || task.Name != "nightly backup" || task.State != protocol.TaskQueued ||
		task.Total != 7 || task.Created.IsZero() || task.Started != nil || task.Finished != nil {
		t.Errorf("start answered %+v; want a queued external task \"nightly backup\" of 7, created, not started", task)
	}
	if got := ts.Task(t, task.ID); got.ID != task.ID || got.Kind != "external" || got.Total != 7 {
		t.Errorf("GET shows %s; want the task just started", tasktest.String(got))
	}
}

func TestTaskExternalReports(t *testing.T) {
	forEachTransport(t, server.Config{}, func(t *testing.T, tr string, ts *pushdtest.Server) {
		task, w := startWatched(t, ts, tr, `{"kind":"external","name":"copy","total":10}`)
		ts.WaitTask(t, task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })

		steps := []struct {
			report string
			check  func(protocol.Task) bool
		}{
			{`{"done":3,"message":"copying"}`, func(tk protocol.Task) bool {
				return tk.Done == 3 && tk.Percent == 30 && tk.Message == "copying" && tk.State == protocol.TaskRunning
			}},
			{`{"percent":50}`, func(tk protocol.Task) bool { return tk.Done == 3 && tk.Percent == 50 && tk.Message == "copying" }},
			{`{"message":"halfway"}`, func(tk protocol.Task) bool { return tk.Percent == 50 && tk.Message == "halfway" }},
			{`{"total":20}`, func(tk protocol.Task) bool { return tk.Total == 20 && tk.Percent == 50 }},
			{`{"done":12}`, func(tk protocol.Task) bool { return tk.Done == 12 && tk.Total == 20 && tk.Percent == 60 }},
			{`{"done":12,"message":"same done again"}`, func(tk protocol.Task) bool { return tk.Done == 12 && tk.Message == "same done again" }},
		}
		for _, s := range steps {
			if got := ts.Report(t, task.ID, s.report); !s.check(got) {
				t.Errorf("report %s answered %s", s.report, tasktest.String(got))
			}
		}
		w.WaitFor(t, "done 12", func(evs []protocol.Event) bool {
			return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Message == "same done again" })
		})

		// Going backwards is a conflict, and changes nothing.
		before := taskSnapshot(t, ts)
		for _, rep := range []string{`{"done":11}`, `{"percent":59}`, `{"done":2,"message":"rewound"}`} {
			ts.Post(t, "/v1/tasks/"+task.ID+"/progress", rep).WantError(t, http.StatusConflict, protocol.CodeConflict)
		}
		if after := taskSnapshot(t, ts); after != before {
			t.Errorf("refused reports changed the tasks:\n%s\nbecame\n%s", before, after)
		}

		got := ts.Report(t, task.ID, `{"state":"succeeded","message":"all done"}`)
		if got.State != protocol.TaskSucceeded || got.Done != 20 || got.Percent != 100 || got.Message != "all done" || got.Finished == nil {
			t.Errorf("report succeeded answered %s; want succeeded 20/20 \"all done\"", tasktest.String(got))
		}
		final := w.WaitFinal(t, task.ID)
		tasktest.CheckSame(t, ts.Task(t, task.ID), final)
		evs, _, _ := w.Seen()
		tasktest.CheckOrder(t, evs)

		// A finished task takes no more reports, and cannot be cancelled.
		before = taskSnapshot(t, ts)
		for _, rep := range []string{`{"done":20}`, `{"message":"late"}`, `{"state":"failed"}`} {
			ts.Post(t, "/v1/tasks/"+task.ID+"/progress", rep).WantError(t, http.StatusConflict, protocol.CodeConflict)
		}
		ts.Post(t, "/v1/tasks/"+task.ID+"/cancel", "").WantError(t, http.StatusConflict, protocol.CodeConflict)
		// The same final report again (its answer was lost) is taken
		// as what it was, and changes nothing.
		a := ts.Post(t, "/v1/tasks/"+task.ID+"/progress", `{"state":"succeeded"}`)
		if a.Status != http.StatusOK {
			t.Errorf("the final report again: %d %s; want 200", a.Status, a.Body)
		}
		if after := taskSnapshot(t, ts); after != before {
			t.Errorf("refused and repeated requests changed the tasks:\n%s\nbecame\n%s", before, after)
		}
	})
}

// Two final reports at once: one ends the task, the other gets 409.
func TestConcurrentFinalReports(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	for range 20 {
		task := s.StartTask(t, `{"kind":"external"}`)
		codes := make(chan int, 2)
		for _, state := range []string{"succeeded", "failed"} {
			go func() {
				status := 0
				defer func() { codes <- status }()
				status = s.Post(pushdtest.GoTB{TB: t}, "/v1/tasks/"+task.ID+"/progress", `{"state":"`+state+`"}`).Status
			}()
		}
		a, b := <-codes, <-codes
		if min(a, b) != 200 || max(a, b) != 409 {
			t.Fatalf("two final reports answered %d and %d; want 200 and 409", a, b)
		}
	}
}

func TestTaskExternalEnds(t *testing.T) {
	ts := startTaskServer(t, server.Config{})
	w := ts.Watch(t, "sse", pushdtest.TasksPath, pushdtest.SubOptions{Since: "0"})
	cases := []struct {
		name, report string
		state        protocol.TaskState
		message      string
	}{
		{"failed with a message", `{"done":2,"state":"failed","message":"disk full"}`, protocol.TaskFailed, "disk full"},
		{"failed without one", `{"state":"failed"}`, protocol.TaskFailed, "failed"},
		{"succeeded without progress", `{"state":"succeeded"}`, protocol.TaskSucceeded, ""},
		{"cancelled", "", protocol.TaskCancelled, "cancelled on request"},
	}
	for _, c := range cases {
		task := ts.StartTask(t, `{"kind":"external","total":5}`)
		ts.WaitTask(t, task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
		if c.report == "" {
			ts.CancelTask(t, task.ID)
		} else {
			ts.Report(t, task.ID, c.report)
		}
		final := w.WaitFinal(t, task.ID)
		if final.State != c.state || final.Message != c.message {
			t.Errorf("%s: ended %s; want %s %q", c.name, tasktest.String(final), c.state, c.message)
		}
		if c.state == protocol.TaskSucceeded && (final.Done != 5 || final.Percent != 100) {
			t.Errorf("%s: ended %s; want 5/5", c.name, tasktest.String(final))
		}
		tasktest.CheckSame(t, ts.Task(t, task.ID), final)
	}
	evs, _, _ := w.Seen()
	tasktest.CheckOrder(t, evs)
}

func TestTaskStartBadRequests(t *testing.T) {
	ts := startTaskServer(t, server.Config{MaxBodyBytes: 1024})
	ts.StartTask(t, `{"kind":"external","name":"already here"}`)
	cases := []struct {
		name        string
		body        string
		contentType string // "" for application/json
		status      int
		code        string
	}{
		{"unknown kind", `{"kind":"nope"}`, "", 400, protocol.CodeInvalidParam},
		{"no kind", `{"name":"x"}`, "", 400, protocol.CodeInvalidParam},
		{"empty kind", `{"kind":""}`, "", 400, protocol.CodeInvalidParam},
		{"kind not a string", `{"kind":5}`, "", 400, protocol.CodeInvalidJSON},
		{"name not a string", `{"kind":"demo","name":["x"]}`, "", 400, protocol.CodeInvalidJSON},
		{"name with a control character", `{"kind":"demo","name":"a\u0007b"}`, "", 400, protocol.CodeInvalidParam},
		{"name too long", `{"kind":"demo","name":"` + strings.Repeat("n", 201) + `"}`, "", 400, protocol.CodeInvalidParam},
		// PROTOCOL.md: unknown fields and wrong types are invalid_json.
		{"param of the wrong type", `{"kind":"demo","total":"ten"}`, "", 400, protocol.CodeInvalidJSON},
		{"interval of the wrong type", `{"kind":"demo","interval":50}`, "", 400, protocol.CodeInvalidJSON},
		{"unknown param", `{"kind":"demo","speed":2}`, "", 400, protocol.CodeInvalidJSON},
		{"unknown external param", `{"kind":"external","steps":3}`, "", 400, protocol.CodeInvalidJSON},
		{"total below 1", `{"kind":"demo","total":-1}`, "", 400, protocol.CodeInvalidParam},
		{"total too large", `{"kind":"demo","total":1000001}`, "", 400, protocol.CodeInvalidParam},
		{"interval not a duration", `{"kind":"demo","interval":"soon"}`, "", 400, protocol.CodeInvalidParam},
		{"interval too short", `{"kind":"demo","interval":"1ns"}`, "", 400, protocol.CodeInvalidParam},
		{"interval zero", `{"kind":"demo","interval":"0s"}`, "", 400, protocol.CodeInvalidParam},
		{"interval too long", `{"kind":"demo","interval":"2h"}`, "", 400, protocol.CodeInvalidParam},
		{"fail_at negative", `{"kind":"demo","total":10,"fail_at":-1}`, "", 400, protocol.CodeInvalidParam},
		{"fail_at past total", `{"kind":"demo","total":10,"fail_at":11}`, "", 400, protocol.CodeInvalidParam},
		{"external total negative", `{"kind":"external","total":-1}`, "", 400, protocol.CodeInvalidParam},
		{"not JSON", `kind=demo`, "", 400, protocol.CodeInvalidJSON},
		{"truncated JSON", `{"kind":"demo"`, "", 400, protocol.CodeInvalidJSON},
		{"an array", `[{"kind":"demo"}]`, "", 400, protocol.CodeInvalidJSON},
		{"null", `null`, "", 400, protocol.CodeInvalidJSON},
		{"trailing data", `{"kind":"demo"} {"kind":"demo"}`, "", 400, protocol.CodeInvalidJSON},
		{"empty body", ``, "", 400, protocol.CodeInvalidJSON},
		{"text/plain", `{"kind":"demo"}`, "text/plain", 415, protocol.CodeUnsupportedMedia},
		{"no content type", `{"kind":"demo"}`, "none", 415, protocol.CodeUnsupportedMedia},
		{"body too large", `{"kind":"demo","name":"` + strings.Repeat("n", 2000) + `"}`, "", 413, protocol.CodeBodyTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := taskSnapshot(t, ts)
			ct := "application/json"
			switch c.contentType {
			case "none":
				ct = ""
			case "":
			default:
				ct = c.contentType
			}
			ts.Post(t, "/v1/tasks", c.body, "Content-Type", ct).WantError(t, c.status, c.code)
			if after := taskSnapshot(t, ts); after != before {
				t.Errorf("a refused start changed the tasks:\n%s\nbecame\n%s", before, after)
			}
		})
	}
	a := ts.Post(t, "/v1/tasks", `{"kind":"nope"}`)
	if a.Status == http.StatusBadRequest && (!strings.Contains(string(a.Body), "demo") || !strings.Contains(string(a.Body), "external")) {
		t.Errorf("the answer to an unknown kind does not list the known ones: %s", a.Body)
	}
	// Refused params say why: the kind's check, and the wrong type in
	// JSON's words.
	for body, says := range map[string]string{
		`{"kind":"demo","total":1000001}`: "total must be from 1 to 1000000",
		`{"kind":"demo","total":"ten"}`:   `field \"total\" must be a whole number in range, not string`,
	} {
		if a := ts.Post(t, "/v1/tasks", body); a.Status != http.StatusBadRequest || !strings.Contains(string(a.Body), says) {
			t.Errorf("POST /v1/tasks %s: %d %s; want 400 saying %s", body, a.Status, a.Body, says)
		}
	}
}

func TestTaskReportBadRequests(t *testing.T) {
	ts := startTaskServer(t, server.Config{MaxBodyBytes: 4096})
	task := ts.StartTask(t, `{"kind":"external","total":10}`)
	ts.WaitTask(t, task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
	ts.Report(t, task.ID, `{"done":5,"message":"half"}`)
	waitQuiet(t, ts, task.ID, "done 5", func(tk protocol.Task) bool { return tk.Done == 5 })

	cases := []struct {
		name        string
		body        string
		contentType string
		status      int
		code        string
	}{
		{"done negative", `{"done":-1}`, "", 400, protocol.CodeInvalidParam},
		{"total negative", `{"total":-1}`, "", 400, protocol.CodeInvalidParam},
		{"percent over 100", `{"percent":101}`, "", 400, protocol.CodeInvalidParam},
		{"percent negative", `{"percent":-0.5}`, "", 400, protocol.CodeInvalidParam},
		{"state cancelled", `{"state":"cancelled"}`, "", 400, protocol.CodeInvalidParam},
		{"state running", `{"state":"running"}`, "", 400, protocol.CodeInvalidParam},
		{"state unknown", `{"state":"done"}`, "", 400, protocol.CodeInvalidParam},
		{"empty report", `{}`, "", 400, protocol.CodeInvalidParam},
		{"message too long", `{"message":"` + strings.Repeat("m", 1025) + `"}`, "", 400, protocol.CodeInvalidParam},
		{"bad value beside an end", `{"done":-1,"state":"succeeded"}`, "", 400, protocol.CodeInvalidParam},
		{"bad value beside good ones", `{"done":6,"message":"more","percent":200}`, "", 400, protocol.CodeInvalidParam},
		{"done of the wrong type", `{"done":"six"}`, "", 400, protocol.CodeInvalidJSON},
		{"unknown field", `{"dones":6}`, "", 400, protocol.CodeInvalidJSON},
		{"not JSON", `done=6`, "", 400, protocol.CodeInvalidJSON},
		{"trailing data", `{"done":6} {"done":7}`, "", 400, protocol.CodeInvalidJSON},
		{"text/plain", `{"done":6}`, "text/plain", 415, protocol.CodeUnsupportedMedia},
		{"body too large", `{"message":"` + strings.Repeat("m", 5000) + `"}`, "", 413, protocol.CodeBodyTooLarge},
		{"done going back", `{"done":4}`, "", 409, protocol.CodeConflict},
		{"percent going back", `{"percent":40}`, "", 409, protocol.CodeConflict},
		{"done going back with an end", `{"done":4,"state":"succeeded"}`, "", 409, protocol.CodeConflict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := taskSnapshot(t, ts)
			ct := "application/json"
			if c.contentType != "" {
				ct = c.contentType
			}
			ts.Post(t, "/v1/tasks/"+task.ID+"/progress", c.body, "Content-Type", ct).WantError(t, c.status, c.code)
			if after := taskSnapshot(t, ts); after != before {
				t.Errorf("a refused report changed the tasks:\n%s\nbecame\n%s", before, after)
			}
		})
	}

	t.Run("a task that reports its own progress", func(t *testing.T) {
		demo := ts.StartTask(t, `{"kind":"demo","total":3,"interval":"1h"}`)
		// Its events: queued, running (with the total its params gave) and
		// the total it reports, which may go out a moment later, coalesced.
		testwait.Until(t, pushdtest.Timeout, 2*time.Millisecond, func() error {
			if evs := ts.History(t, pushdtest.TasksPath); len(tasktest.Of(evs, demo.ID)) < 3 {
				return fmt.Errorf("the demo's three events are not all out: %s", tasktest.EventsString(evs))
			}
			return nil
		})
		before := taskSnapshot(t, ts)
		ts.Post(t, "/v1/tasks/"+demo.ID+"/progress", `{"done":2}`).WantError(t, http.StatusConflict, protocol.CodeConflict)
		if after := taskSnapshot(t, ts); after != before {
			t.Errorf("a refused report changed the tasks:\n%s\nbecame\n%s", before, after)
		}
		ts.CancelTask(t, demo.ID)
	})
}

func TestTaskWrongMethod(t *testing.T) {
	ts := startTaskServer(t, server.Config{})
	task := ts.StartTask(t, `{"kind":"external"}`)
	ts.WaitTask(t, task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
	cases := []struct {
		method, path, allow string
	}{
		{http.MethodPut, "/v1/tasks", "GET, POST, HEAD"},
		{http.MethodDelete, "/v1/tasks", "GET, POST, HEAD"},
		{http.MethodDelete, "/v1/tasks/" + task.ID, "GET, HEAD"},
		{http.MethodPost, "/v1/tasks/" + task.ID, "GET, HEAD"},
		{http.MethodGet, "/v1/tasks/" + task.ID + "/cancel", "POST"},
		{http.MethodDelete, "/v1/tasks/" + task.ID + "/cancel", "POST"},
		{http.MethodGet, "/v1/tasks/" + task.ID + "/progress", "POST"},
		{http.MethodPut, "/v1/tasks/" + task.ID + "/progress", "POST"},
		{http.MethodPost, "/v1/tasks/events", "GET, HEAD"},
		{http.MethodPost, "/v1/tasks/" + task.ID + "/events", "GET, HEAD"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+strings.ReplaceAll(c.path, task.ID, "{id}"), func(t *testing.T) {
			before := taskSnapshot(t, ts)
			body := ""
			if c.method != http.MethodGet && c.method != http.MethodDelete {
				body = `{"kind":"demo","done":1}`
			}
			a := ts.Request(t, t.Context(), c.method, c.path, body)
			a.WantError(t, http.StatusMethodNotAllowed, protocol.CodeMethodNotAllowed)
			if got := a.Header.Get("Allow"); got != c.allow {
				t.Errorf("Allow %q; want %q", got, c.allow)
			}
			if after := taskSnapshot(t, ts); after != before {
				t.Errorf("a refused request changed the tasks:\n%s\nbecame\n%s", before, after)
			}
		})
	}
}

func TestTaskUnknownID(t *testing.T) {
	ts := startTaskServer(t, server.Config{})
	const id = "tnosuchtask"
	cases := []struct {
		method, path, body string
		header             []string
	}{
		{http.MethodGet, "/v1/tasks/" + id, "", nil},
		{http.MethodPost, "/v1/tasks/" + id + "/cancel", "", nil},
		{http.MethodPost, "/v1/tasks/" + id + "/progress", `{"done":1}`, nil},
		{http.MethodGet, "/v1/tasks/" + id + "/events?since=0&wait=0", "", nil},
		{http.MethodGet, "/v1/tasks/" + id + "/events?since=0", "", []string{"Accept", "text/event-stream"}},
		{http.MethodGet, "/v1/tasks/" + id + "/nothing", "", nil},
	}
	before := taskSnapshot(t, ts)
	for _, c := range cases {
		ts.Request(t, t.Context(), c.method, c.path, c.body, c.header...).WantError(t, http.StatusNotFound, protocol.CodeNotFound)
	}
	var refused *pushdtest.RefusedError
	if sub, err := ts.TrySubscribe(pushdtest.WS, pushdtest.TaskPath(id), pushdtest.SubOptions{Since: "0"}); err == nil {
		sub.Close()
		t.Error("a WebSocket to the events of an unknown task was accepted")
	} else if !errors.As(err, &refused) || refused.Status != http.StatusNotFound {
		t.Errorf("a WebSocket to the events of an unknown task: %v; want 404", err)
	}
	if after := taskSnapshot(t, ts); after != before {
		t.Errorf("requests for an unknown task changed the tasks:\n%s\nbecame\n%s", before, after)
	}
}

func TestTaskListNewestFirst(t *testing.T) {
	ts := startTaskServer(t, server.Config{})
	var want []string
	for i := range 4 {
		kind := `"kind":"external"`
		if i == 1 {
			kind = `"kind":"demo","total":1,"interval":"1ms"`
		}
		task := ts.StartTask(t, fmt.Sprintf(`{%s,"name":"task %d"}`, kind, i))
		want = append([]string{task.ID}, want...)
	}
	list := ts.Tasks(t)
	var got []string
	for i, tk := range list {
		got = append(got, tk.ID)
		if i > 0 && tk.Created.After(list[i-1].Created) {
			t.Errorf("task %s created %v comes after %s created %v", tk.ID, tk.Created, list[i-1].ID, list[i-1].Created)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GET /v1/tasks lists %v; want newest first %v", got, want)
	}
}

// TestTaskLocalAnswersAsTheAPI checks what task peers serve to other
// servers: LocalTasks' results, and TaskPeerErrorOf's answers, which must
// be those the HTTP API gives for the same request.
func TestTaskLocalAnswersAsTheAPI(t *testing.T) {
	ts := startTaskServer(t, server.Config{})
	local := ts.Srv().Tasks().Local()
	ctx := t.Context()
	ext := ts.StartTask(t, `{"kind":"external","total":10}`)
	demo := ts.StartTask(t, `{"kind":"demo","total":10,"interval":"1h"}`)
	one, zero, over := int64(1), int64(0), 101.0

	got, err := local.Report(ctx, ext.ID, protocol.ProgressReport{Done: &one})
	if err != nil || got.ID != ext.ID || got.Done != 1 {
		t.Fatalf("Local().Report: %+v, %v; want done 1", got, err)
	}
	if shown := ts.Task(t, ext.ID); shown.Done != 1 {
		t.Fatalf("after Local().Report the API shows %s", tasktest.String(shown))
	}

	report := func(id string, rep protocol.ProgressReport) func() error {
		return func() error { _, err := local.Report(ctx, id, rep); return err }
	}
	cancel := func(id string) func() error {
		return func() error { _, err := local.Cancel(ctx, id); return err }
	}
	refusals := []struct {
		name         string
		call         func() error
		method, path string
		body         string
		status       int
		code         string
	}{
		{"unknown task", report("tnosuchtask", protocol.ProgressReport{Done: &one}),
			http.MethodPost, "/v1/tasks/tnosuchtask/progress", `{"done":1}`, http.StatusNotFound, protocol.CodeNotFound},
		{"unknown task cancelled", cancel("tnosuchtask"),
			http.MethodPost, "/v1/tasks/tnosuchtask/cancel", "", http.StatusNotFound, protocol.CodeNotFound},
		{"report to a demo", report(demo.ID, protocol.ProgressReport{Done: &one}),
			http.MethodPost, "/v1/tasks/" + demo.ID + "/progress", `{"done":1}`, http.StatusConflict, protocol.CodeConflict},
		{"going backwards", report(ext.ID, protocol.ProgressReport{Done: &zero}),
			http.MethodPost, "/v1/tasks/" + ext.ID + "/progress", `{"done":0}`, http.StatusConflict, protocol.CodeConflict},
		{"bad percent", report(ext.ID, protocol.ProgressReport{Percent: &over}),
			http.MethodPost, "/v1/tasks/" + ext.ID + "/progress", `{"percent":101}`, http.StatusBadRequest, protocol.CodeInvalidParam},
	}
	for _, c := range refusals {
		pe := server.TaskPeerErrorOf(c.call())
		api := ts.Request(t, t.Context(), c.method, c.path, c.body).WantError(t, c.status, c.code)
		if pe.Status != c.status || pe.Code != c.code {
			t.Errorf("%s: peers get %d %s, the API %d %s; want %d %s", c.name, pe.Status, pe.Code, c.status, api.Code, c.status, c.code)
		}
		if pe.Message != api.Message {
			t.Errorf("%s: peers get %q, the API %q", c.name, pe.Message, api.Message)
		}
	}

	// Cancel, then cancel a finished task.
	if got, err := local.Cancel(ctx, demo.ID); err != nil || got.ID != demo.ID {
		t.Fatalf("Local().Cancel: %+v, %v", got, err)
	}
	ts.WaitTask(t, demo.ID, "cancelled", func(tk protocol.Task) bool { return tk.State == protocol.TaskCancelled })
	_, err = local.Cancel(ctx, demo.ID)
	if pe := server.TaskPeerErrorOf(err); pe.Status != http.StatusConflict || pe.Code != protocol.CodeConflict {
		t.Errorf("cancel of a finished task: peers get %+v; want 409 conflict", pe)
	}

	// A store out of reach is a 503, without its details.
	if pe := server.TaskPeerErrorOf(fmt.Errorf("publish: %w: nats: timeout", server.ErrUnavailable)); pe.Status != http.StatusServiceUnavailable ||
		pe.Code != protocol.CodeUnavailable || strings.Contains(pe.Message, "nats") {
		t.Errorf("a store out of reach: peers get %+v; want 503 unavailable without details", pe)
	}

	// A fault of the server is an internal error, without its details.
	if pe := server.TaskPeerErrorOf(fmt.Errorf("write record: disk on fire")); pe.Status != http.StatusInternalServerError ||
		pe.Code != protocol.CodeInternal || strings.Contains(pe.Message, "disk") {
		t.Errorf("a server fault: peers get %+v; want 500 internal without details", pe)
	}
}

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
	// Once the final report is answered the task has ended, and the
	// start that follows at once is taken.
	s.Report(t, ext.ID, `{"state":"succeeded"}`)
	s.StartTask(t, `{"kind":"external","name":"three"}`)
}

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
