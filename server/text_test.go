package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// Text people see holds no control characters but newline and tab: a
// message that would clear a terminal and retitle it, a task name with a
// colour, a progress message with a C1 control are refused with a 400
// that says which character at which byte, and store nothing; newlines
// and tabs in a message pass as they are.
func TestTextRefusesControlCharacters(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	room := pushdtest.RoomPath("lobby")
	head := s.Head(t, room)

	for _, c := range []struct{ body, says string }{
		{`{"user":"ann","text":"\u001b]0;pwned\u0007\u001b[2J"}`, "U+001B (ESC) at byte 0"},
		{`{"user":"ann","text":"fine\r"}`, "U+000D (CR) at byte 4"},
		{`{"user":"ann","text":"c1 \u009b2J"}`, "U+009B (CSI) at byte 3"},
		{`{"user":"ann","text":"bell\u0007"}`, "U+0007 (BEL) at byte 4"},
	} {
		e := s.Post(t, "/v1/rooms/lobby/messages", c.body).WantError(t, http.StatusBadRequest, protocol.CodeInvalidParam)
		if !strings.Contains(e.Message, c.says) || !strings.Contains(e.Message, "message text") {
			t.Errorf("publish %s: %q; want it to say %q", c.body, e.Message, c.says)
		}
	}
	if got := s.Head(t, room); got != head {
		t.Fatalf("refused messages moved the room from %s to %s", head, got)
	}
	ev := s.Publish(t, "lobby", "ann", "two\nlines\tand a tab")
	if ev.Text != "two\nlines\tand a tab" {
		t.Fatalf("a message of two lines was stored as %q", ev.Text)
	}

	e := s.Post(t, "/v1/tasks", `{"kind":"external","name":"build \u001b[31mred"}`).WantError(t, http.StatusBadRequest, protocol.CodeInvalidParam)
	if !strings.Contains(e.Message, "U+001B (ESC) at byte 6") {
		t.Errorf("a task name with ESC: %q", e.Message)
	}
	task := s.StartTask(t, `{"kind":"external","name":"copy"}`)
	e = s.Post(t, "/v1/tasks/"+task.ID+"/progress", `{"message":"\u009d0;x\u009c"}`).WantError(t, http.StatusBadRequest, protocol.CodeInvalidParam)
	if !strings.Contains(e.Message, "U+009D (OSC) at byte 0") {
		t.Errorf("a progress message with OSC: %q", e.Message)
	}
	if got := s.Report(t, task.ID, `{"message":"step 1\nstep 2"}`); got.Message != "step 1\nstep 2" {
		t.Errorf("a progress message of two lines: %q", got.Message)
	}
}
