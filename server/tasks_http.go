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
	if err := s.taskAccess(r, true); err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := s.decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body == nil {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "the body must be a JSON object such as {\"kind\":\"demo\",\"name\":\"try\"}")
	}
	var kind, name string
	if err := takeString(body, "kind", &kind); err != nil {
		return err
	}
	if kind == "" {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "kind is required, e.g. {\"kind\":\"demo\"} or {\"kind\":\"external\"}")
	}
	if err := takeString(body, "name", &name); err != nil {
		return err
	}
	if err := protocol.ValidateTaskName(name); err != nil {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "%v", err)
	}
	params, err := json.Marshal(body)
	if err != nil {
		return err
	}
	t, err := s.tasks.Start(r.Context(), kind, name, params)
	if err != nil {
		return taskAnswer(err)
	}
	w.Header().Set("Location", "/v1/tasks/"+t.ID)
	writeJSON(w, http.StatusCreated, t)
	return nil
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
	if err := s.taskAccess(r, false); err != nil {
		return err
	}
	tasks, err := s.tasks.ListAll(r.Context())
	if err != nil {
		return taskAnswer(err)
	}
	writeJSON(w, http.StatusOK, protocol.TaskList{Tasks: tasks})
	return nil
}

func (s *Server) handleGetTask(w http.ResponseWriter, r *http.Request) error {
	if err := s.taskAccess(r, false); err != nil {
		return err
	}
	t, err := s.tasks.Find(r.Context(), r.PathValue("id"))
	if err != nil {
		return taskAnswer(err)
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) handleCancelTask(w http.ResponseWriter, r *http.Request) error {
	if err := s.taskAccess(r, true); err != nil {
		return err
	}
	t, err := s.tasks.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		return taskAnswer(err)
	}
	writeJSON(w, http.StatusAccepted, t)
	return nil
}

func (s *Server) handleTaskProgress(w http.ResponseWriter, r *http.Request) error {
	if err := s.taskAccess(r, true); err != nil {
		return err
	}
	var rep protocol.ProgressReport
	if err := s.decodeJSON(w, r, &rep); err != nil {
		return err
	}
	t, err := s.tasks.Report(r.Context(), r.PathValue("id"), rep)
	if err != nil {
		return taskAnswer(err)
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) handleTasksEvents(w http.ResponseWriter, r *http.Request) error {
	if err := s.taskAccess(r, false); err != nil {
		return err
	}
	return s.serveEvents(w, r, eventsTarget{query: r.URL.Query(), stream: protocol.TasksStream})
}

func (s *Server) handleTaskEvents(w http.ResponseWriter, r *http.Request) error {
	if err := s.taskAccess(r, false); err != nil {
		return err
	}
	// The task is looked up once the subscription is open (settleTask),
	// so that an end in between is not missed.
	return s.serveEvents(w, r, eventsTarget{query: r.URL.Query(), stream: protocol.TasksStream, filter: r.PathValue("id")})
}
