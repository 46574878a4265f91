package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks/tasktest"
)

// Tasks that belong to someone: who may cancel and report on them, who
// sees them, and tasks that stop when nobody watches.

// The users of these tests: ann and bob run tasks in rooms of their own,
// carol may use every room, root is an admin, and eve may only watch.
var taskUsers = map[string]server.Claims{
	"ann":   {Rooms: []string{"ops", "lobby"}, Tasks: true},
	"bob":   {Rooms: []string{"lobby"}, Tasks: true},
	"carol": {Rooms: []string{"*"}, Tasks: true},
	"root":  {Admin: true},
	"eve":   {Rooms: []string{"*"}},
}

// owned is a server that needs tokens, and the same server as each user
// of taskUsers reaches it: as[user] sends that user's token.
type owned struct {
	*pushdtest.Server
	as map[string]*pushdtest.Remote
}

// startOwned starts a server that needs tokens.
func startOwned(t *testing.T, cfg server.Config) owned {
	t.Helper()
	cfg.AuthSecret = authSecret
	s := owned{Server: pushdtest.Start(t, cfg), as: make(map[string]*pushdtest.Remote)}
	for user, c := range taskUsers {
		s.as[user] = s.WithHeader("Authorization", "Bearer "+mint(t, user, c))
	}
	return s
}

// refused checks that a request of r is refused with status and code,
// with a message that says says.
func refused(t *testing.T, r *pushdtest.Remote, method, path, body string, status int, code, says string) {
	t.Helper()
	a := r.Request(t, t.Context(), method, path, body)
	if a.Status != status {
		t.Errorf("%s %s %s: %d %s; want %d", method, path, body, a.Status, a.Body, status)
		return
	}
	if e := a.Error(t); e.Code != code || !strings.Contains(e.Message, says) {
		t.Errorf("%s %s: %s %q; want %s saying %q", method, path, e.Code, e.Message, code, says)
	}
}

func TestTaskOwnerAndAdminOnly(t *testing.T) {
	s := startOwned(t, server.Config{})
	tk := s.as["ann"].StartTask(t, `{"kind":"external","name":"backup","total":10}`)
	if tk.Owner != "ann" {
		t.Fatalf("started as ann, the task's owner is %q", tk.Owner)
	}
	id := "/v1/tasks/" + tk.ID
	refused(t, s.as["bob"], http.MethodPost, id+"/cancel", "", http.StatusForbidden, protocol.CodeForbidden, "task "+tk.ID+" is ann's")
	refused(t, s.as["bob"], http.MethodPost, id+"/progress", `{"done":1}`, http.StatusForbidden, protocol.CodeForbidden, "is ann's: only they or an admin may report on it")
	refused(t, s.as["eve"], http.MethodPost, id+"/cancel", "", http.StatusForbidden, protocol.CodeForbidden, "may watch tasks but not")
	refused(t, s.as["bob"], http.MethodPost, "/v1/tasks", `{"kind":"external","user":"ann"}`, http.StatusForbidden, protocol.CodeForbidden, "cannot start a task as ann")
	s.as["ann"].Report(t, tk.ID, `{"done":2}`)
	s.as["root"].Report(t, tk.ID, `{"done":3}`)
	s.as["root"].CancelTask(t, tk.ID)
	mine := s.as["bob"].StartTask(t, `{"kind":"external"}`)
	s.as["bob"].CancelTask(t, mine.ID)
	// The admin right is enough to start a task, too.
	if adm := s.as["root"].StartTask(t, `{"kind":"external"}`); adm.Owner != "root" {
		t.Errorf("the admin's task is %q's", adm.Owner)
	}
}

func TestTaskOwnerOnAnOpenServer(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	var tk protocol.Task
	s.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"external","user":"ann"}`, http.StatusCreated, &tk)
	if tk.Owner != "ann" {
		t.Errorf("started with user ann, the task's owner is %q", tk.Owner)
	}
	a := s.Post(t, "/v1/tasks", `{"kind":"external","user":"no one"}`)
	if a.Status != http.StatusBadRequest || a.Error(t).Code != protocol.CodeInvalidName {
		t.Errorf("a start with a bad user name: %d %s; want 400 invalid_name", a.Status, a.Body)
	}
	// Without tokens nobody is checked: anyone cancels.
	s.Expect(t, http.MethodPost, "/v1/tasks/"+tk.ID+"/cancel", "", http.StatusAccepted, nil)
}

func TestTaskScopes(t *testing.T) {
	s := startOwned(t, server.Config{})
	cur := s.as["root"].Head(t, "/v1/tasks/events").String()
	// Every transport, for bob (lobby only) and carol (every room): what
	// they see of the tasks stream, from before the tasks.
	var bobs, carols []*pushdtest.Watcher
	for _, tr := range pushdtest.Transports {
		bobs = append(bobs, s.as["bob"].Watch(t, tr, "/v1/tasks/events", pushdtest.SubOptions{Since: cur}))
		carols = append(carols, s.as["carol"].Watch(t, tr, "/v1/tasks/events", pushdtest.SubOptions{Since: cur}))
	}
	ops := s.as["ann"].StartTask(t, `{"kind":"external","name":"deploy","room":"ops"}`)
	private := s.as["ann"].StartTask(t, `{"kind":"external","name":"diary","private":true}`)
	open := s.as["ann"].StartTask(t, `{"kind":"external","name":"for all"}`)
	if ops.Room != "ops" || !private.Private || open.Room != "" || open.Private {
		t.Fatalf("started %+v, %+v, %+v; want scoped to ops, private, and neither", ops, private, open)
	}
	for _, id := range []string{ops.ID, private.ID, open.ID} {
		s.as["ann"].Report(t, id, `{"state":"succeeded"}`)
	}
	// Newest first.
	sees := map[string][]string{
		"ann":   {open.ID, private.ID, ops.ID},
		"bob":   {open.ID},
		"carol": {open.ID, ops.ID},
		"eve":   {open.ID, ops.ID},
		"root":  {open.ID, private.ID, ops.ID},
	}
	for user, want := range sees {
		var got []string
		for _, tk := range s.as[user].Tasks(t) {
			got = append(got, tk.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s lists %v; want %v", user, got, want)
		}
		for _, id := range []string{ops.ID, private.ID} {
			should := strings.Contains(fmt.Sprint(want), id)
			for _, path := range []string{"/v1/tasks/" + id, "/v1/tasks/" + id + "/events?wait=0"} {
				if a := s.as[user].Get(t, path); (a.Status == http.StatusOK) != should || !should && a.Status != http.StatusNotFound {
					t.Errorf("GET %s as %s: %d %s; want %v", path, user, a.Status, a.Body, map[bool]string{true: "200", false: "404"}[should])
				}
			}
		}
	}
	refused(t, s.as["ann"], http.MethodPost, "/v1/tasks/"+private.ID+"/cancel", "", http.StatusConflict, protocol.CodeConflict, "already finished")
	refused(t, s.as["bob"], http.MethodPost, "/v1/tasks/"+private.ID+"/cancel", "", http.StatusNotFound, protocol.CodeNotFound, "task not found")
	refused(t, s.as["bob"], http.MethodPost, "/v1/tasks", `{"kind":"demo","room":"ops"}`, http.StatusForbidden, protocol.CodeForbidden, "may not use room ops")
	refused(t, s.as["ann"], http.MethodPost, "/v1/tasks", `{"kind":"demo","room":"ops","private":true}`, http.StatusBadRequest, protocol.CodeInvalidParam, "not both")
	refused(t, s.as["ann"], http.MethodPost, "/v1/tasks", `{"kind":"demo","private":"yes"}`, http.StatusBadRequest, protocol.CodeInvalidJSON, "private")

	// A last task for everyone marks the end: what a watcher has not seen
	// by then it never sees.
	last := s.as["root"].StartTask(t, `{"kind":"external","name":"last"}`)
	check := func(who string, ws []*pushdtest.Watcher, want []string) {
		for i, w := range ws {
			evs := w.WaitFor(t, "the last task", func(evs []protocol.Event) bool { return tasktest.Seen(evs, last.ID, isQueued) })
			var ids []string
			seen := make(map[string]bool)
			for _, ev := range evs {
				if ev.Task != nil && !seen[ev.Task.ID] {
					seen[ev.Task.ID] = true
					ids = append(ids, ev.Task.ID)
				}
			}
			if fmt.Sprint(ids) != fmt.Sprint(append(want, last.ID)) {
				t.Errorf("%s over %s saw the tasks %v; want %v", who, pushdtest.Transports[i], ids, append(want, last.ID))
			}
		}
	}
	check("bob", bobs, []string{open.ID})
	check("carol", carols, []string{ops.ID, open.ID})

	// A poll from where bob started answers nothing of ann's scoped tasks,
	// with a cursor past them: skipped events move it on.
	evs, next := s.as["bob"].Poll(t, "/v1/tasks/events", "since="+cur+"&wait=0")
	if c, _ := protocol.ParseCursor(next); c.Seq != s.as["root"].Head(t, "/v1/tasks/events").Seq {
		t.Errorf("bob's poll ends at %s; want the head of the stream", next)
	}
	for _, ev := range evs {
		if ev.Task.ID == ops.ID || ev.Task.ID == private.ID {
			t.Errorf("bob's poll has %s", pushdtest.OneLine(ev))
		}
	}
}

func isQueued(tk protocol.Task) bool { return tk.State == protocol.TaskQueued }

func isFinal(tk protocol.Task) bool { return tk.State.Final() }

// wantUnwatched checks that tk was cancelled as unwatched, no sooner than
// after it was last watched.
func wantUnwatched(t *testing.T, tk protocol.Task, after time.Time, d time.Duration) {
	t.Helper()
	if tk.State != protocol.TaskCancelled || tk.Message != protocol.MessageUnwatched {
		t.Errorf("task ended %s; want cancelled, %q", tasktest.String(tk), protocol.MessageUnwatched)
		return
	}
	if gap := tk.Finished.Sub(after); gap < d {
		t.Errorf("task cancelled as unwatched %s after it was last watched; want %s or more", gap, d)
	}
}

func TestTaskCancelledWhenNobodyWatches(t *testing.T) {
	s := startOwned(t, server.Config{LongPollWait: 2 * time.Second})
	const long = `"kind":"demo","total":1000,"interval":"100ms"`
	t.Run("never watched", func(t *testing.T) {
		t.Parallel()
		tk := s.as["ann"].StartTask(t, `{`+long+`,"cancel_unwatched":"1s"}`)
		if tk.CancelUnwatched != "1s" {
			t.Errorf("started with cancel_unwatched 1s, the task says %q", tk.CancelUnwatched)
		}
		wantUnwatched(t, s.as["ann"].WaitTask(t, tk.ID, "the end", isFinal), tk.Created, time.Second)
	})
	for _, tr := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run("watcher leaves over "+tr, func(t *testing.T) {
			t.Parallel()
			tk := s.as["ann"].StartTask(t, `{`+long+`,"cancel_unwatched":"1s","private":true}`)
			w := s.as["ann"].Watch(t, tr, "/v1/tasks/"+tk.ID+"/events", pushdtest.SubOptions{})
			w.WaitFor(t, "progress", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, tk.ID, func(tk protocol.Task) bool { return tk.Done >= 15 })
			})
			w.Stop()
			left := time.Now()
			wantUnwatched(t, s.as["ann"].WaitTask(t, tk.ID, "the end", isFinal), left, time.Second)
		})
	}
	t.Run("a watcher comes back in time", func(t *testing.T) {
		t.Parallel()
		// 3 s of work; each watcher is there for a part of it, and the
		// next comes well within the 2 s.
		tk := s.as["ann"].StartTask(t, `{"kind":"demo","total":30,"interval":"100ms","cancel_unwatched":"2s"}`)
		for _, at := range []int64{5, 15} {
			w := s.as["ann"].Watch(t, pushdtest.WS, "/v1/tasks/"+tk.ID+"/events", pushdtest.SubOptions{})
			w.WaitFor(t, "progress", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, tk.ID, func(tk protocol.Task) bool { return tk.Done >= at })
			})
			w.Stop()
		}
		w := s.as["ann"].Watch(t, pushdtest.SSE, "/v1/tasks/"+tk.ID+"/events", pushdtest.SubOptions{})
		if got := s.as["ann"].WaitTask(t, tk.ID, "the end", isFinal); got.State != protocol.TaskSucceeded {
			t.Errorf("a task whose watcher came back in time ended %s; want succeeded", tasktest.String(got))
		}
		w.Stop()
	})
	t.Run("the tasks stream counts when it may see the task", func(t *testing.T) {
		t.Parallel()
		// carol's stream sees ann's ops task but not her private one;
		// bob's sees neither.
		carol := s.as["carol"].Watch(t, pushdtest.SSE, "/v1/tasks/events", pushdtest.SubOptions{})
		bob := s.as["bob"].Watch(t, pushdtest.WS, "/v1/tasks/events", pushdtest.SubOptions{})
		ops := s.as["ann"].StartTask(t, `{"kind":"demo","total":30,"interval":"100ms","cancel_unwatched":"1s","room":"ops"}`)
		private := s.as["ann"].StartTask(t, `{`+long+`,"cancel_unwatched":"1s","private":true}`)
		wantUnwatched(t, s.as["ann"].WaitTask(t, private.ID, "the end", isFinal), private.Created, time.Second)
		if got := s.as["ann"].WaitTask(t, ops.ID, "the end", isFinal); got.State != protocol.TaskSucceeded {
			t.Errorf("a room task watched on the tasks stream by one who may use the room ended %s; want succeeded", tasktest.String(got))
		}
		carol.Stop()
		bob.Stop()
	})
	t.Run("a long poll counts until the long-poll wait after it", func(t *testing.T) {
		t.Parallel()
		tk := s.as["ann"].StartTask(t, `{`+long+`,"cancel_unwatched":"1s"}`)
		polled := time.Now()
		s.as["ann"].Poll(t, "/v1/tasks/"+tk.ID+"/events", "wait=0")
		// One poll, then none: watched until 2 s (the long-poll wait)
		// after it, then cancelled 1 s later.
		wantUnwatched(t, s.as["ann"].WaitTask(t, tk.ID, "the end", isFinal), polled, 3*time.Second)
	})
	t.Run("a long-poll watcher keeps it", func(t *testing.T) {
		t.Parallel()
		tk := s.as["bob"].StartTask(t, `{"kind":"demo","total":30,"interval":"100ms","cancel_unwatched":"1s"}`)
		w := s.as["bob"].Watch(t, pushdtest.LongPoll, "/v1/tasks/"+tk.ID+"/events", pushdtest.SubOptions{Since: "0", Wait: 500 * time.Millisecond})
		evs := w.WaitFor(t, "the end", func(evs []protocol.Event) bool { return tasktest.Final(evs, tk.ID) != nil })
		if got := tasktest.Final(evs, tk.ID); got.State != protocol.TaskSucceeded {
			t.Errorf("a task with a long-poll watcher ended %s; want succeeded", tasktest.String(*got))
		}
	})
}

func TestTaskStartIdempotencyKey(t *testing.T) {
	dir := t.TempDir()
	bs := openTaskBolt(t, dir)
	s := startOwned(t, server.Config{Store: bs, TaskStore: bs})
	post := func(user, body, key string) pushdtest.Answer {
		return s.as[user].Request(t, t.Context(), http.MethodPost, "/v1/tasks", body, "Idempotency-Key", key)
	}
	const body = `{"kind":"demo","name":"once","total":1000,"interval":"100ms","room":"ops"}`
	a := post("ann", body, "deploy:42")
	if a.Status != http.StatusCreated {
		t.Fatalf("first start: %d %s", a.Status, a.Body)
	}
	var first protocol.Task
	a.JSON(t, &first)
	again := func(what string) {
		t.Helper()
		a := post("ann", body, "deploy:42")
		var tk protocol.Task
		if a.Status != http.StatusOK {
			t.Fatalf("%s: %d %s; want 200 and task %s", what, a.Status, a.Body, first.ID)
		}
		if a.JSON(t, &tk); tk.ID != first.ID || a.Header.Get("Location") != "/v1/tasks/"+first.ID {
			t.Fatalf("%s: task %s at %s; want %s", what, tk.ID, a.Header.Get("Location"), first.ID)
		}
	}
	again("the start again")
	for _, c := range []struct{ user, body, key, code, says string }{
		{"ann", `{"kind":"demo","name":"twice","total":1000,"interval":"100ms","room":"ops"}`, "deploy:42", protocol.CodeConflict, "another kind, name, params or scope"},
		{"carol", body, "deploy:42", protocol.CodeConflict, "another user"},
		{"ann", body, "a key with spaces", protocol.CodeInvalidParam, "Idempotency-Key"},
		{"ann", body, strings.Repeat("k", 65), protocol.CodeInvalidParam, "1 to 64"},
	} {
		a := post(c.user, c.body, c.key)
		if e := a.Error(t); e.Code != c.code || !strings.Contains(e.Message, c.says) {
			t.Errorf("key %q from %s: %d %s; want %s saying %q", c.key, c.user, a.Status, a.Body, c.code, c.says)
		}
	}
	s.RestartWith(t, s.Config())
	again("after a restart")
	if l := s.as["root"].Tasks(t); len(l) != 1 {
		t.Errorf("%d tasks after the starts; want 1", len(l))
	}
}
