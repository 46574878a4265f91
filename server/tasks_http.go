package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
)

// taskAnswer maps the task runner's errors onto answers. Errors that wrap
// ErrUnavailable go on as they are, to writeError, which answers 503 with
// Retry-After and without the store's details.
func taskAnswer(err error) error {
	var ae *protocol.Error
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ae):
		if ae.Status == http.StatusServiceUnavailable && ae.RetryAfter == 0 {
			ae.RetryIn(time.Second)
		}
		return ae
	case errors.Is(err, tasks.ErrOwnerSilent):
		return protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable, "%v; retry in a moment", err).RetryIn(time.Second)
	case errors.Is(err, tasks.ErrNotFound):
		return protocol.Errorf(http.StatusNotFound, protocol.CodeNotFound, "%v", err)
	case errors.Is(err, tasks.ErrFinished):
		return protocol.Errorf(http.StatusConflict, protocol.CodeConflict, "%v", err)
	case errors.Is(err, tasks.ErrParamsJSON) && errors.As(err, &typeErr):
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "%v: %s", tasks.ErrParamsJSON, typeError(typeErr))
	case errors.Is(err, tasks.ErrParamsJSON):
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "%v", err)
	case errors.Is(err, tasks.ErrUnknownKind), errors.Is(err, tasks.ErrBadParams):
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "%v", err)
	case errors.Is(err, tasks.ErrBusy):
		return tooMany(5*time.Second, "%v", err)
	case errors.Is(err, tasks.ErrShutdown):
		return protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable, "the server is shutting down; start the task again in a moment")
	}
	return err
}

// TaskPeerErrorOf returns the answer the task API gives for err, an error
// of tasks.Local's Cancel or Report, so that task peers can carry it back to
// the server that forwarded the request. An error that is a fault of this
// server is answered as an internal error, without its details.
func TaskPeerErrorOf(err error) *protocol.Error {
	var ae *protocol.Error
	switch {
	case errors.As(taskAnswer(err), &ae):
		return ae
	case errors.Is(err, ErrUnavailable):
		return protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable,
			"the server that runs the task cannot reach its event store right now; retry in a moment").RetryIn(time.Second)
	}
	return protocol.Errorf(http.StatusInternalServerError, protocol.CodeInternal,
		"internal error on the server that runs the task; its log has the details")
}

func (s *Server) handleStartTask(w http.ResponseWriter, r *http.Request) error {
	id, err := s.taskAccess(r, true)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := s.decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body == nil {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "the body must be a JSON object such as {\"kind\":\"demo\",\"name\":\"try\"}")
	}
	spec, err := s.taskSpec(id, body)
	if err != nil {
		return err
	}
	spec.Key = key
	settle, err := s.allowTaskStart(r, spec.Owner)
	if err != nil {
		return err
	}
	t, repeat, err := s.tasks.Start(r.Context(), spec)
	settle(err == nil && !repeat) // a refused or repeated start costs no token
	if err != nil {
		return taskAnswer(err)
	}
	w.Header().Set("Location", "/v1/tasks/"+t.ID)
	status := http.StatusCreated
	if repeat {
		status = http.StatusOK
	}
	writeJSON(w, status, t)
	return nil
}

// taskSpec reads a start request's body: kind and name, the owner (the
// token's user; on a server without tokens the body's user), the scope
// (room, private), cancel_unwatched, and the rest as the kind's params.
func (s *Server) taskSpec(id *identity, body map[string]json.RawMessage) (tasks.Spec, error) {
	var spec tasks.Spec
	var user, unwatched string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"kind", &spec.Kind}, {"name", &spec.Name}, {"user", &user}, {"room", &spec.Room}, {"cancel_unwatched", &unwatched}} {
		if err := takeString(body, f.name, f.dst); err != nil {
			return spec, err
		}
	}
	if raw, ok := body["private"]; ok {
		delete(body, "private")
		if err := json.Unmarshal(raw, &spec.Private); err != nil {
			return spec, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "field \"private\" must be true or false")
		}
	}
	if spec.Kind == "" {
		return spec, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "kind is required, e.g. {\"kind\":\"demo\"} or {\"kind\":\"external\"}")
	}
	if err := protocol.ValidateTaskName(spec.Name); err != nil {
		return spec, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "%v", err)
	}
	if user != "" {
		if err := protocol.ValidateName("user", user); err != nil {
			return spec, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidName, "%v", err)
		}
	}
	spec.Owner = user
	if id != nil {
		if user != "" && user != id.user {
			return spec, protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "the token is for %s; it cannot start a task as %s", id.user, user)
		}
		spec.Owner = id.user
	}
	if spec.Room != "" {
		if err := protocol.ValidateName("room", spec.Room); err != nil {
			return spec, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidName, "%v", err)
		}
		if spec.Private {
			return spec, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "a task shows in a room or privately, not both: give room or private")
		}
		if !id.isAdmin() && !id.mayJoin(spec.Room) {
			return spec, protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "user %s may not use room %s, so cannot start a task there", id.user, spec.Room)
		}
	}
	if unwatched != "" {
		d, err := protocol.ParseCancelUnwatched(unwatched)
		if err != nil {
			return spec, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "%v", err)
		}
		spec.CancelUnwatched = d
	}
	params, err := json.Marshal(body)
	if err != nil {
		return spec, err
	}
	spec.Params = params
	return spec, nil
}

// takeString removes a string field from body into dst.
func takeString(body map[string]json.RawMessage, field string, dst *string) error {
	raw, ok := body[field]
	if !ok {
		return nil
	}
	delete(body, field)
	if err := json.Unmarshal(raw, dst); err != nil {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "field %q must be a JSON string", field)
	}
	return nil
}

func (s *Server) handleListTasks(w http.ResponseWriter, r *http.Request) error {
	id, err := s.taskAccess(r, false)
	if err != nil {
		return err
	}
	all, err := s.tasks.ListAll(r.Context())
	if err != nil {
		return taskAnswer(err)
	}
	seen := all[:0]
	for i := range all {
		if id.seesTask(&all[i]) {
			seen = append(seen, all[i])
		}
	}
	writeJSON(w, http.StatusOK, protocol.TaskList{Tasks: seen})
	return nil
}

// findTask returns the caller's identity and the task of the request's
// path as it may see it (change: the request changes the task, so it needs
// the right to): one it may not see is not found, like one that does not
// exist.
func (s *Server) findTask(r *http.Request, change bool) (*identity, protocol.Task, error) {
	id, err := s.taskAccess(r, change)
	if err != nil {
		return nil, protocol.Task{}, err
	}
	t, err := s.tasks.Find(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, t, taskAnswer(err)
	}
	if !id.seesTask(&t) {
		return nil, protocol.Task{}, protocol.Errorf(http.StatusNotFound, protocol.CodeNotFound, "%v: %s", tasks.ErrNotFound, t.ID)
	}
	return id, t, nil
}

// changeTask checks that id may cancel (what) or report on the request's
// task: its owner, an admin, or on a task without owner anyone with the
// tasks right.
func (s *Server) changeTask(r *http.Request, what string) error {
	id, t, err := s.findTask(r, true)
	if err != nil {
		return err
	}
	if id.isAdmin() || t.Owner == "" || t.Owner == id.user {
		return nil
	}
	return protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "task %s is %s's: only they or an admin may %s it", t.ID, t.Owner, what)
}

// writeTask answers with the task a change left, or with the error that
// prevented it.
func writeTask(w http.ResponseWriter, status int, t protocol.Task, err error) error {
	if err != nil {
		return taskAnswer(err)
	}
	writeJSON(w, status, t)
	return nil
}

func (s *Server) handleGetTask(w http.ResponseWriter, r *http.Request) error {
	_, t, err := s.findTask(r, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) handleCancelTask(w http.ResponseWriter, r *http.Request) error {
	if err := s.changeTask(r, "cancel"); err != nil {
		return err
	}
	t, err := s.tasks.Cancel(r.Context(), r.PathValue("id"))
	return writeTask(w, http.StatusAccepted, t, err)
}

func (s *Server) handleTaskProgress(w http.ResponseWriter, r *http.Request) error {
	if err := s.changeTask(r, "report on"); err != nil {
		return err
	}
	var rep protocol.ProgressReport
	if err := s.decodeJSON(w, r, &rep); err != nil {
		return err
	}
	t, err := s.tasks.Report(r.Context(), r.PathValue("id"), rep)
	return writeTask(w, http.StatusOK, t, err)
}

func (s *Server) handleTasksEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := s.taskAccess(r, false)
	if err != nil {
		return err
	}
	return s.serveEvents(w, r, eventsTarget{query: r.URL.Query(), stream: protocol.TasksStream, tasks: true, viewer: taskViewer(id), owner: id.name()})
}

func (s *Server) handleTaskEvents(w http.ResponseWriter, r *http.Request) error {
	id, t, err := s.findTask(r, false)
	if err != nil {
		return err
	}
	// The task's state is looked at again once the subscription is open
	// (settleTask), so that an end in between is not missed.
	return s.serveEvents(w, r, eventsTarget{query: r.URL.Query(), stream: protocol.TasksStream, filter: t.ID, tasks: true, viewer: taskViewer(id), owner: id.name()})
}
