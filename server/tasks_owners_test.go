package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
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

// startOwned starts a server that needs tokens, and lets a request act as
// a user of taskUsers through its path: as(user, path) is path with that
// user's token.
func startOwned(t *testing.T, cfg server.Config) *pushdtest.Server {
	t.Helper()
	cfg.AuthSecret = authSecret
	tokens := make(map[string]string)
	for user, c := range taskUsers {
		tokens[user] = mint(t, user, c)
	}
	return pushdtest.Start(t, cfg, pushdtest.Wrap(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rest, ok := strings.CutPrefix(r.URL.Path, "/as/"); ok {
				user, path, _ := strings.Cut(rest, "/")
				r.URL.Path, r.URL.RawPath = "/"+path, ""
				r.Header.Set("Authorization", "Bearer "+tokens[user])
			}
			h.ServeHTTP(w, r)
		})
	}))
}

// as is path for a request as user (see startOwned).
func as(user, path string) string { return "/as/" + user + path }

// startAs starts a task as user, failing the test unless it is created.
func startAs(t *testing.T, s *pushdtest.Server, user, body string) protocol.Task {
	t.Helper()
	var tk protocol.Task
	s.Expect(t, http.MethodPost, as(user, "/v1/tasks"), body, http.StatusCreated, &tk)
	return tk
}

// refused checks that a request as user is refused with status and code,
// with a message that says says.
func refused(t *testing.T, s *pushdtest.Server, user, method, path, body string, status int, code, says string) {
	t.Helper()
	a := s.Request(t, t.Context(), method, as(user, path), body)
	if a.Status != status {
		t.Errorf("%s %s %s as %s: %d %s; want %d", method, path, body, user, a.Status, a.Body, status)
		return
	}
	if e := a.Error(t); e.Code != code || !strings.Contains(e.Message, says) {
		t.Errorf("%s %s as %s: %s %q; want %s saying %q", method, path, user, e.Code, e.Message, code, says)
	}
}

func TestTaskOwnerAndAdminOnly(t *testing.T) {
	s := startOwned(t, server.Config{})
	tk := startAs(t, s, "ann", `{"kind":"external","name":"backup","total":10}`)
	if tk.Owner != "ann" {
		t.Fatalf("started as ann, the task's owner is %q", tk.Owner)
	}
	id := "/v1/tasks/" + tk.ID
	refused(t, s, "bob", http.MethodPost, id+"/cancel", "", http.StatusForbidden, protocol.CodeForbidden, "task "+tk.ID+" is ann's")
	refused(t, s, "bob", http.MethodPost, id+"/progress", `{"done":1}`, http.StatusForbidden, protocol.CodeForbidden, "is ann's: only they or an admin may report on it")
	refused(t, s, "eve", http.MethodPost, id+"/cancel", "", http.StatusForbidden, protocol.CodeForbidden, "may watch tasks but not")
	refused(t, s, "bob", http.MethodPost, "/v1/tasks", `{"kind":"external","user":"ann"}`, http.StatusForbidden, protocol.CodeForbidden, "cannot start a task as ann")
	s.Expect(t, http.MethodPost, as("ann", id+"/progress"), `{"done":2}`, http.StatusOK, nil)
	s.Expect(t, http.MethodPost, as("root", id+"/progress"), `{"done":3}`, http.StatusOK, nil)
	s.Expect(t, http.MethodPost, as("root", id+"/cancel"), "", http.StatusAccepted, nil)
	mine := startAs(t, s, "bob", `{"kind":"external"}`)
	s.Expect(t, http.MethodPost, as("bob", "/v1/tasks/"+mine.ID+"/cancel"), "", http.StatusAccepted, nil)
	// The admin right is enough to start a task, too.
	if adm := startAs(t, s, "root", `{"kind":"external"}`); adm.Owner != "root" {
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
	cur := s.Head(t, as("root", "/v1/tasks/events")).String()
	// Every transport, for bob (lobby only) and carol (every room): what
	// they see of the tasks stream, from before the tasks.
	var bobs, carols []*pushdtest.Watcher
	for _, tr := range pushdtest.Transports {
		bobs = append(bobs, s.Watch(t, tr, as("bob", "/v1/tasks/events"), pushdtest.SubOptions{Since: cur}))
		carols = append(carols, s.Watch(t, tr, as("carol", "/v1/tasks/events"), pushdtest.SubOptions{Since: cur}))
	}
	ops := startAs(t, s, "ann", `{"kind":"external","name":"deploy","room":"ops"}`)
	private := startAs(t, s, "ann", `{"kind":"external","name":"diary","private":true}`)
	open := startAs(t, s, "ann", `{"kind":"external","name":"for all"}`)
	if ops.Room != "ops" || !private.Private || open.Room != "" || open.Private {
		t.Fatalf("started %+v, %+v, %+v; want scoped to ops, private, and neither", ops, private, open)
	}
	for _, id := range []string{ops.ID, private.ID, open.ID} {
		s.Expect(t, http.MethodPost, as("ann", "/v1/tasks/"+id+"/progress"), `{"state":"succeeded"}`, http.StatusOK, nil)
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
		var l protocol.TaskList
		s.Expect(t, http.MethodGet, as(user, "/v1/tasks"), "", http.StatusOK, &l)
		var got []string
		for _, tk := range l.Tasks {
			got = append(got, tk.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s lists %v; want %v", user, got, want)
		}
		for _, id := range []string{ops.ID, private.ID} {
			should := strings.Contains(fmt.Sprint(want), id)
			for _, path := range []string{"/v1/tasks/" + id, "/v1/tasks/" + id + "/events?wait=0"} {
				if a := s.Get(t, as(user, path)); (a.Status == http.StatusOK) != should || !should && a.Status != http.StatusNotFound {
					t.Errorf("GET %s as %s: %d %s; want %v", path, user, a.Status, a.Body, map[bool]string{true: "200", false: "404"}[should])
				}
			}
		}
	}
	refused(t, s, "ann", http.MethodPost, "/v1/tasks/"+private.ID+"/cancel", "", http.StatusConflict, protocol.CodeConflict, "already finished")
	refused(t, s, "bob", http.MethodPost, "/v1/tasks/"+private.ID+"/cancel", "", http.StatusNotFound, protocol.CodeNotFound, "task not found")
	refused(t, s, "bob", http.MethodPost, "/v1/tasks", `{"kind":"demo","room":"ops"}`, http.StatusForbidden, protocol.CodeForbidden, "may not use room ops")
	refused(t, s, "ann", http.MethodPost, "/v1/tasks", `{"kind":"demo","room":"ops","private":true}`, http.StatusBadRequest, protocol.CodeInvalidParam, "not both")
	refused(t, s, "ann", http.MethodPost, "/v1/tasks", `{"kind":"demo","private":"yes"}`, http.StatusBadRequest, protocol.CodeInvalidJSON, "private")

	// A last task for everyone marks the end: what a watcher has not seen
	// by then it never sees.
	last := startAs(t, s, "root", `{"kind":"external","name":"last"}`)
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
	evs, next := s.Poll(t, as("bob", "/v1/tasks/events"), "since="+cur+"&wait=0")
	if c, _ := protocol.ParseCursor(next); c.Seq != s.Head(t, as("root", "/v1/tasks/events")).Seq {
		t.Errorf("bob's poll ends at %s; want the head of the stream", next)
	}
	for _, ev := range evs {
		if ev.Task.ID == ops.ID || ev.Task.ID == private.ID {
			t.Errorf("bob's poll has %s", pushdtest.OneLine(ev))
		}
	}
}

func isQueued(tk protocol.Task) bool { return tk.State == protocol.TaskQueued }

// finalOf waits until task id has ended, as user sees it, and returns it.
func finalOf(t *testing.T, s *pushdtest.Server, user, id string) protocol.Task {
	t.Helper()
	var tk protocol.Task
	testwait.Until(t, pushdtest.Timeout, 10*time.Millisecond, func() error {
		a := s.Get(t, as(user, "/v1/tasks/"+id))
		if a.Status != http.StatusOK {
			return fmt.Errorf("GET task %s: %d %s", id, a.Status, a.Body)
		}
		a.JSON(t, &tk)
		if !tk.State.Final() {
			return fmt.Errorf("task %s has not ended: %s", id, tasktest.String(tk))
		}
		return nil
	})
	return tk
}

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
		tk := startAs(t, s, "ann", `{`+long+`,"cancel_unwatched":"1s"}`)
		if tk.CancelUnwatched != "1s" {
			t.Errorf("started with cancel_unwatched 1s, the task says %q", tk.CancelUnwatched)
		}
		wantUnwatched(t, finalOf(t, s, "ann", tk.ID), tk.Created, time.Second)
	})
	for _, tr := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run("watcher leaves over "+tr, func(t *testing.T) {
			t.Parallel()
			tk := startAs(t, s, "ann", `{`+long+`,"cancel_unwatched":"1s","private":true}`)
			w := s.Watch(t, tr, as("ann", "/v1/tasks/"+tk.ID+"/events"), pushdtest.SubOptions{})
			w.WaitFor(t, "progress", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, tk.ID, func(tk protocol.Task) bool { return tk.Done >= 15 })
			})
			w.Stop()
			left := time.Now()
			wantUnwatched(t, finalOf(t, s, "ann", tk.ID), left, time.Second)
		})
	}
	t.Run("a watcher comes back in time", func(t *testing.T) {
		t.Parallel()
		// 3 s of work; each watcher is there for a part of it, and the
		// next comes well within the 2 s.
		tk := startAs(t, s, "ann", `{"kind":"demo","total":30,"interval":"100ms","cancel_unwatched":"2s"}`)
		for _, at := range []int64{5, 15} {
			w := s.Watch(t, pushdtest.WS, as("ann", "/v1/tasks/"+tk.ID+"/events"), pushdtest.SubOptions{})
			w.WaitFor(t, "progress", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, tk.ID, func(tk protocol.Task) bool { return tk.Done >= at })
			})
			w.Stop()
		}
		w := s.Watch(t, pushdtest.SSE, as("ann", "/v1/tasks/"+tk.ID+"/events"), pushdtest.SubOptions{})
		if got := finalOf(t, s, "ann", tk.ID); got.State != protocol.TaskSucceeded {
			t.Errorf("a task whose watcher came back in time ended %s; want succeeded", tasktest.String(got))
		}
		w.Stop()
	})
	t.Run("the tasks stream counts when it may see the task", func(t *testing.T) {
		t.Parallel()
		// carol's stream sees ann's ops task but not her private one;
		// bob's sees neither.
		carol := s.Watch(t, pushdtest.SSE, as("carol", "/v1/tasks/events"), pushdtest.SubOptions{})
		bob := s.Watch(t, pushdtest.WS, as("bob", "/v1/tasks/events"), pushdtest.SubOptions{})
		ops := startAs(t, s, "ann", `{"kind":"demo","total":30,"interval":"100ms","cancel_unwatched":"1s","room":"ops"}`)
		private := startAs(t, s, "ann", `{`+long+`,"cancel_unwatched":"1s","private":true}`)
		wantUnwatched(t, finalOf(t, s, "ann", private.ID), private.Created, time.Second)
		if got := finalOf(t, s, "ann", ops.ID); got.State != protocol.TaskSucceeded {
			t.Errorf("a room task watched on the tasks stream by one who may use the room ended %s; want succeeded", tasktest.String(got))
		}
		carol.Stop()
		bob.Stop()
	})
	t.Run("a long poll counts until the long-poll wait after it", func(t *testing.T) {
		t.Parallel()
		tk := startAs(t, s, "ann", `{`+long+`,"cancel_unwatched":"1s"}`)
		polled := time.Now()
		s.Poll(t, as("ann", "/v1/tasks/"+tk.ID+"/events"), "wait=0")
		// One poll, then none: watched until 2 s (the long-poll wait)
		// after it, then cancelled 1 s later.
		wantUnwatched(t, finalOf(t, s, "ann", tk.ID), polled, 3*time.Second)
	})
	t.Run("a long-poll watcher keeps it", func(t *testing.T) {
		t.Parallel()
		tk := startAs(t, s, "bob", `{"kind":"demo","total":30,"interval":"100ms","cancel_unwatched":"1s"}`)
		w := s.Watch(t, pushdtest.LongPoll, as("bob", "/v1/tasks/"+tk.ID+"/events"), pushdtest.SubOptions{Since: "0", Wait: 500 * time.Millisecond})
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
		return s.Request(t, t.Context(), http.MethodPost, as(user, "/v1/tasks"), body, "Idempotency-Key", key)
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
	var l protocol.TaskList
	s.Expect(t, http.MethodGet, as("root", "/v1/tasks"), "", http.StatusOK, &l)
	if len(l.Tasks) != 1 {
		t.Errorf("%d tasks after the starts; want 1", len(l.Tasks))
	}
}
