package server

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pushd/push/protocol"
)

// roomName returns the validated {room} of the request path.
func roomName(r *http.Request) (string, error) {
	room := r.PathValue("room")
	if err := protocol.ValidateName("room", room); err != nil {
		return "", protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidName, "%v", err)
	}
	return room, nil
}

func (s *Server) handleRoomEvents(w http.ResponseWriter, r *http.Request) error {
	room, err := roomName(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	user := q.Get("user")
	if user != "" || q.Has("user") {
		if err := protocol.ValidateName("user", user); err != nil {
			return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidName, "%v", err)
		}
	}
	owner, err := s.roomAccess(r, room, user, false)
	if err != nil {
		return err
	}
	if q.Has("before") {
		return s.serveHistory(w, r, protocol.RoomStream(room), q)
	}
	return s.serveEvents(w, r, eventsTarget{query: q, stream: protocol.RoomStream(room), room: room, user: user, owner: owner})
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) error {
	room, err := roomName(r)
	if err != nil {
		return err
	}
	actor, err := s.roomAccess(r, room, "", true)
	if err != nil {
		return err
	}
	var req protocol.PublishRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		var ae *protocol.Error
		if errors.As(err, &ae) && ae.Code == protocol.CodeBodyTooLarge {
			// The limit a person sending a message meets is the text's.
			ae.Message += fmt.Sprintf("; a message's text may be at most %d bytes", s.cfg.MaxTextBytes)
		}
		return err
	}
	switch {
	case actor == "":
		if err := protocol.ValidateName("user", req.User); err != nil {
			return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidName, "%v", err)
		}
	case req.User != "" && req.User != actor:
		return protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "the token is for %s; it cannot post as %s", actor, req.User)
	default:
		req.User = actor
	}
	switch {
	case strings.TrimSpace(req.Text) == "":
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeEmptyText, "the message text is empty or only whitespace; send {\"user\":\"...\",\"text\":\"...\"} with some text")
	case len(req.Text) > s.cfg.MaxTextBytes:
		return protocol.Errorf(http.StatusRequestEntityTooLarge, protocol.CodeTextTooLong, "the message text is %d bytes; the limit is %d", len(req.Text), s.cfg.MaxTextBytes)
	}
	if err := protocol.ValidateText("the message text", req.Text, true); err != nil {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "%v", err)
	}
	id, err := messageID(r, req.ID)
	if err != nil {
		return err
	}
	settle, err := s.allowPublish(req.User)
	if err != nil {
		return err
	}
	if err := s.presence.confirm(r.Context(), room, req.User); err != nil {
		settle(false)
		return err
	}
	a, err := s.hub.publish(r.Context(), protocol.RoomStream(room), protocol.Event{Type: protocol.TypeMessage, User: req.User, Text: req.Text, ID: id}, true)
	settle(err == nil && !a.Repeat) // a refused or repeated publish costs no token
	switch {
	case err != nil:
		return err
	case a.Conflict:
		return protocol.Errorf(http.StatusConflict, protocol.CodeConflict,
			"id %q was given to another message in this room (seq %d), with another user or text; give each message an id of its own", id, a.Event.Seq)
	case a.Repeat:
		writeJSON(w, http.StatusOK, a.Event)
	default:
		writeJSON(w, http.StatusCreated, a.Event)
	}
	return nil
}

// messageID returns the id a publish gives its message: the body's "id" or
// the Idempotency-Key header, which must agree when both are there; "" for
// none.
func messageID(r *http.Request, body string) (string, error) {
	header, err := idempotencyKey(r)
	if err != nil {
		return "", err
	}
	if body != "" {
		if err := protocol.ValidateID("id", body); err != nil {
			return "", protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "%v", err)
		}
	}
	if header != "" && body != "" && header != body {
		return "", protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "the body's id %q and the %s header %q differ; give one, or the same in both", body, protocol.IdempotencyKeyHeader, header)
	}
	return cmp.Or(body, header), nil
}

// idempotencyKey returns the request's Idempotency-Key header, checked,
// or "" when there is none.
func idempotencyKey(r *http.Request) (string, error) {
	keys := r.Header.Values(protocol.IdempotencyKeyHeader)
	switch {
	case len(keys) == 0:
		return "", nil
	case len(keys) > 1:
		return "", protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "the %s header is given %d times; give it once", protocol.IdempotencyKeyHeader, len(keys))
	}
	if err := protocol.ValidateID(protocol.IdempotencyKeyHeader, keys[0]); err != nil {
		return "", protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "%v", err)
	}
	return keys[0], nil
}

func (s *Server) handlePresence(w http.ResponseWriter, r *http.Request) error {
	room, err := roomName(r)
	if err != nil {
		return err
	}
	if _, err := s.roomAccess(r, room, "", false); err != nil {
		return err
	}
	users, err := s.presence.present(r.Context(), room)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.Presence{Users: users})
	return nil
}
