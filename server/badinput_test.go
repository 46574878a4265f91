package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// Every bad request gets its documented status, code and JSON error body,
// and changes nothing: the stream's cursor stays where it was.
func TestBadInputAnswers(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	p.Publish(t, "lobby", "alice", "before")

	const (
		msgs   = "/v1/rooms/lobby/messages"
		events = "/v1/rooms/lobby/events"
		js     = "application/json"
	)
	long := strings.Repeat("a", 65)
	wsHeaders := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
	sse := []string{"Accept", "text/event-stream"}
	tests := []struct {
		name, method, path, ctype, body string
		header                          []string
		status                          int
		code                            string
		allow                           string // the Allow header of a 405
	}{
		// Bodies.
		{"malformed JSON", "POST", msgs, js, `{"user":"a","text":`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"not JSON at all", "POST", msgs, js, `user=a&text=hi`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"unclosed object", "POST", msgs, js, `{"user":"a","text":"hi"`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"empty body", "POST", msgs, js, ``, nil, 400, protocol.CodeInvalidJSON, ""},
		{"unknown field", "POST", msgs, js, `{"user":"a","text":"hi","room":"x"}`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"wrong type of text", "POST", msgs, js, `{"user":"a","text":5}`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"wrong type of user", "POST", msgs, js, `{"user":["a"],"text":"hi"}`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"an array", "POST", msgs, js, `[{"user":"a","text":"hi"}]`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"a string", "POST", msgs, js, `"hi"`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"trailing object", "POST", msgs, js, `{"user":"a","text":"hi"}{}`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"trailing garbage", "POST", msgs, js, `{"user":"a","text":"hi"} x`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"trailing bracket", "POST", msgs, js, `{"user":"a","text":"hi"}]`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"trailing second value", "POST", msgs, js, `{"user":"a","text":"hi"} 1`, nil, 400, protocol.CodeInvalidJSON, ""},
		// Names.
		{"room of 65 chars", "POST", "/v1/rooms/" + long + "/messages", js, `{"user":"a","text":"hi"}`, nil, 400, protocol.CodeInvalidName, ""},
		{"room a/b", "POST", "/v1/rooms/a%2Fb/messages", js, `{"user":"a","text":"hi"}`, nil, 400, protocol.CodeInvalidName, ""},
		{"room with a space", "POST", "/v1/rooms/a%20b/messages", js, `{"user":"a","text":"hi"}`, nil, 400, protocol.CodeInvalidName, ""},
		{"room not ASCII", "POST", "/v1/rooms/l%C3%B6bby/messages", js, `{"user":"a","text":"hi"}`, nil, 400, protocol.CodeInvalidName, ""},
		{"subscribe to room a/b", "GET", "/v1/rooms/a%2Fb/events?wait=0", "", "", nil, 400, protocol.CodeInvalidName, ""},
		{"presence of room of 65", "GET", "/v1/rooms/" + long + "/presence", "", "", nil, 400, protocol.CodeInvalidName, ""},
		{"user of 65 chars", "POST", msgs, js, `{"user":"` + long + `","text":"hi"}`, nil, 400, protocol.CodeInvalidName, ""},
		{"user a/b", "POST", msgs, js, `{"user":"a/b","text":"hi"}`, nil, 400, protocol.CodeInvalidName, ""},
		{"no user", "POST", msgs, js, `{"text":"hi"}`, nil, 400, protocol.CodeInvalidName, ""},
		{"null body", "POST", msgs, js, `null`, nil, 400, protocol.CodeInvalidJSON, ""},
		{"subscribe as user a/b", "GET", events + "?wait=0&user=a%2Fb", "", "", nil, 400, protocol.CodeInvalidName, ""},
		{"subscribe as user of 65", "GET", events + "?user=" + long, "", "", wsHeaders, 400, protocol.CodeInvalidName, ""},
		{"subscribe as empty user", "GET", events + "?wait=0&user=", "", "", nil, 400, protocol.CodeInvalidName, ""},
		// Texts and sizes.
		{"empty text", "POST", msgs, js, `{"user":"a","text":""}`, nil, 400, protocol.CodeEmptyText, ""},
		{"no text", "POST", msgs, js, `{"user":"a"}`, nil, 400, protocol.CodeEmptyText, ""},
		{"text not UTF-8", "POST", msgs, js, "{\"user\":\"a\",\"text\":\"caf\xe9\"}", nil, 400, protocol.CodeInvalidJSON, ""},
		{"text of spaces only", "POST", msgs, js, `{"user":"a","text":"  \t \n"}`, nil, 400, protocol.CodeEmptyText, ""},
		{"text over 4 KiB", "POST", msgs, js, `{"user":"a","text":"` + strings.Repeat("x", 4097) + `"}`, nil, 413, protocol.CodeTextTooLong, ""},
		{"text over 4 KiB in runes", "POST", msgs, js, `{"user":"a","text":"` + strings.Repeat("é", 2049) + `"}`, nil, 413, protocol.CodeTextTooLong, ""},
		{"body over the limit", "POST", msgs, js, `{"user":"a","text":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, protocol.CodeBodyTooLarge, ""},
		{"body over the limit in whitespace", "POST", msgs, js, `{"user":"a","text":"x"}` + strings.Repeat(" ", 70<<10), nil, 413, protocol.CodeBodyTooLarge, ""},
		// Cursors.
		{"since x:y", "GET", events + "?wait=0&since=x:y", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since words", "GET", events + "?wait=0&since=latest", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since negative", "GET", events + "?wait=0&since=-1", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since plus", "GET", events + "?wait=0&since=%2B1", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since empty", "GET", events + "?wait=0&since=", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since without epoch", "GET", events + "?wait=0&since=:5", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since without seq", "GET", events + "?wait=0&since=abc:", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since fraction", "GET", events + "?wait=0&since=1.5", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since overflow", "GET", events + "?wait=0&since=18446744073709551616", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since epoch with a slash", "GET", events + "?wait=0&since=a%2Fb:1", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since epoch of 65", "GET", events + "?wait=0&since=" + long + ":1", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since two colons", "GET", events + "?wait=0&since=a:1:2", "", "", nil, 400, protocol.CodeInvalidCursor, ""},
		{"since on SSE", "GET", events + "?since=x", "", "", sse, 400, protocol.CodeInvalidCursor, ""},
		{"since on WebSocket", "GET", events + "?since=x", "", "", wsHeaders, 400, protocol.CodeInvalidCursor, ""},
		{"Last-Event-ID", "GET", events + "?since=0", "", "", append([]string{"Last-Event-ID", "x:y"}, sse...), 400, protocol.CodeInvalidCursor, ""},
		{"bad since with a user", "GET", events + "?since=x&user=alice", "", "", sse, 400, protocol.CodeInvalidCursor, ""},
		// Other parameters.
		{"wait words", "GET", events + "?wait=soon", "", "", nil, 400, protocol.CodeInvalidParam, ""},
		{"wait negative", "GET", events + "?wait=-1s", "", "", nil, 400, protocol.CodeInvalidParam, ""},
		{"wait fraction without unit", "GET", events + "?wait=1.5", "", "", nil, 400, protocol.CodeInvalidParam, ""},
		{"wait with a user", "GET", events + "?since=0&wait=x&user=alice", "", "", nil, 400, protocol.CodeInvalidParam, ""},
		// Methods.
		{"GET messages", "GET", msgs, "", "", nil, 405, protocol.CodeMethodNotAllowed, "POST"},
		{"DELETE messages", "DELETE", msgs, "", "", nil, 405, protocol.CodeMethodNotAllowed, "POST"},
		{"PUT messages", "PUT", msgs, js, `{"user":"a","text":"hi"}`, nil, 405, protocol.CodeMethodNotAllowed, "POST"},
		{"POST events", "POST", events, js, `{"user":"a","text":"hi"}`, nil, 405, protocol.CodeMethodNotAllowed, "GET, HEAD"},
		{"POST presence", "POST", "/v1/rooms/lobby/presence", js, `{}`, nil, 405, protocol.CodeMethodNotAllowed, "GET, HEAD"},
		{"DELETE healthz", "DELETE", "/healthz", "", "", nil, 405, protocol.CodeMethodNotAllowed, "GET, HEAD"},
		// Media types.
		{"text/plain", "POST", msgs, "text/plain", `{"user":"a","text":"hi"}`, nil, 415, protocol.CodeUnsupportedMedia, ""},
		{"no content type", "POST", msgs, "", `{"user":"a","text":"hi"}`, nil, 415, protocol.CodeUnsupportedMedia, ""},
		{"form", "POST", msgs, "application/x-www-form-urlencoded", `user=a&text=hi`, nil, 415, protocol.CodeUnsupportedMedia, ""},
		{"json-ish", "POST", msgs, "application/jsonx", `{"user":"a","text":"hi"}`, nil, 415, protocol.CodeUnsupportedMedia, ""},
		{"broken media type", "POST", msgs, "application/json; charset", `{"user":"a","text":"hi"}`, nil, 415, protocol.CodeUnsupportedMedia, ""},
		// Paths.
		{"unknown path", "GET", "/v1/nope", "", "", nil, 404, protocol.CodeNotFound, ""},
		{"root", "GET", "/", "", "", nil, 404, protocol.CodeNotFound, ""},
		{"a room alone", "GET", "/v1/rooms/lobby", "", "", nil, 404, protocol.CodeNotFound, ""},
		{"below events", "GET", events + "/more", "", "", nil, 404, protocol.CodeNotFound, ""},
		{"POST unknown path", "POST", "/v1/rooms/lobby/message", js, `{"user":"a","text":"hi"}`, nil, 404, protocol.CodeNotFound, ""},
		{"no version", "GET", "/rooms/lobby/events", "", "", nil, 404, protocol.CodeNotFound, ""},
		{"empty room segment", "GET", "/v1/rooms//presence", "", "", nil, 404, protocol.CodeNotFound, ""},
		{"empty segment before a message", "POST", "/v1/rooms//messages", js, `{"user":"a","text":"hi"}`, nil, 404, protocol.CodeNotFound, ""},
		{"dot segment", "GET", "/v1/rooms/../tasks", "", "", nil, 404, protocol.CodeNotFound, ""},
		{"empty segment and a final slash", "POST", "/v1/rooms//messages/", js, `{"user":"a","text":"hi"}`, nil, 404, protocol.CodeNotFound, ""},
		{"double final slash", "GET", "/v1//", "", "", nil, 404, protocol.CodeNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := p.Head(t, pushdtest.RoomPath("lobby"))
			a := send(t, p, tc.method, tc.path, tc.ctype, tc.body, tc.header...)
			a.WantError(t, tc.status, tc.code)
			if tc.allow != "" && a.Header.Get("Allow") != tc.allow {
				t.Fatalf("Allow: %q; want %q", a.Header.Get("Allow"), tc.allow)
			}
			if after := p.Head(t, pushdtest.RoomPath("lobby")); after != before {
				t.Fatalf("the stream moved from %s to %s; a refused request must change nothing", before, after)
			}
			if got := p.Presence(t, "lobby"); len(got) != 0 {
				t.Fatalf("present after a refused request: %q", got)
			}
		})
	}
}

// Refusals say what is wrong in the sender's terms: a value of the wrong
// kind in JSON's words, not the server's types; for a message, the limit
// on its text, not only the body's.
func TestRefusalMessagesInTheSendersTerms(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	const msgs, tasks = "/v1/rooms/lobby/messages", "/v1/tasks"
	for _, tc := range []struct{ path, body, want string }{
		{msgs, `[{"user":"a","text":"hi"}]`, "the body must be a JSON object, not array"},
		{msgs, `"hi"`, "the body must be a JSON object, not string"},
		{msgs, `{"user":"a","text":5}`, `field "text" must be a JSON string, not number`},
		{msgs, `{"user":"a","text":"` + strings.Repeat("x", 70<<10) + `"}`, "the body is over the limit of 65536 bytes; a message's text may be at most 4096 bytes"},
		{tasks, `{"kind":"demo","total":1.5}`, `task params: field "total" must be a whole number in range, not number 1.5`},
		{tasks, `{"kind":"demo","total":1e30}`, `task params: field "total" must be a whole number in range, not number 1e30`},
		{tasks, `{"kind":"demo","interval":5}`, `task params: field "interval" must be a JSON string, not number`},
	} {
		if msg := p.Post(t, tc.path, tc.body).Error(t).Message; msg != tc.want {
			t.Fatalf("%s: message %q; want %q", tc.body, msg, tc.want)
		}
	}
}

// Requests at the edge of the limits are accepted.
func TestPublishLimitsAccepted(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	for _, tc := range []struct{ name, ctype, body, text string }{
		{"text of exactly 4 KiB", "application/json", `{"user":"a","text":"` + strings.Repeat("x", 4096) + `"}`, strings.Repeat("x", 4096)},
		{"charset parameter", "application/json; charset=utf-8", `{"user":"a","text":"hi"}`, "hi"},
		{"upper-case media type", "Application/JSON", `{"user":"a","text":"hi"}`, "hi"},
		{"trailing whitespace", "application/json", "{\"user\":\"a\",\"text\":\"hi\"}\n\r\n\t ", "hi"},
		{"escapes", "application/json", `{"user":"a","text":"\u003cb\u003e \"q\" \ud83d\ude00"}`, `<b> "q" 😀`},
		{"user of 64", "application/json", `{"user":"` + strings.Repeat("u", 64) + `","text":"hi"}`, "hi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, p, "POST", "/v1/rooms/lobby/messages", tc.ctype, tc.body)
			if a.Status != http.StatusCreated {
				t.Fatalf("%d %s; want 201", a.Status, a.Body)
			}
			if ev := pushdtest.CheckEvent(t, a.Body); ev.Text != tc.text {
				t.Fatalf("stored text %q; want %q", ev.Text, tc.text)
			}
		})
	}
	// A room name of 64 characters works.
	p.Publish(t, strings.Repeat("r", 64), "a", "hi")
}

// send makes a request with a Content-Type of ctype ("": none) and
// returns the answer.
func send(t testing.TB, p *pushdtest.Server, method, path, ctype, body string, header ...string) pushdtest.Answer {
	t.Helper()
	return p.Request(t, context.Background(), method, path, body, append([]string{"Content-Type", ctype}, header...)...)
}

// A WebSocket upgrade that cannot be accepted (no Sec-WebSocket-Key, a
// version other than 13, a bad key) gets the JSON error body like every
// other refusal, and changes nothing: no login for its ?user=.
func TestRefusedWebSocketHandshakeChangesNothing(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	p.Publish(t, "lobby", "alice", "before")
	base := []string{"Connection", "Upgrade", "Upgrade", "websocket"}
	for _, tc := range []struct {
		name, user string
		header     []string
	}{
		{"no key", "mallory1", []string{"Sec-WebSocket-Version", "13"}},
		{"version 8", "mallory2", []string{"Sec-WebSocket-Version", "8", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}},
		{"short key", "mallory3", []string{"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "c2hvcnQ="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.Head(t, pushdtest.RoomPath("lobby"))
			a := p.Request(t, t.Context(), "GET", "/v1/rooms/lobby/events?user="+tc.user, "", append(append([]string{}, base...), tc.header...)...)
			status, hdr, body := a.Status, a.Header, a.Body
			if status < 400 || status >= 500 {
				t.Fatalf("refused handshake answered %d %s; want a 4xx", status, body)
			}
			after := p.Head(t, pushdtest.RoomPath("lobby"))
			present := p.Presence(t, "lobby")
			if after != before || slices.Contains(present, tc.user) {
				t.Errorf("a refused handshake moved the stream from %s to %s (%s) and left %q present; it must change nothing",
					before, after, pushdtest.Summary(p.History(t, pushdtest.RoomPath("lobby"))[before.Seq:]), present)
			}
			var e protocol.ErrorBody
			if hdr.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Errorf("refused handshake answered %d with Content-Type %q and body %q; want the JSON error body", status, hdr.Get("Content-Type"), body)
			}
		})
	}
}

// A WebSocket upgrade over HTTP/1.0 or with two keys is refused with the
// error body, and its ?user= never logs in.
func TestWebSocketHandshakeRefusalsChangeNothing(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	for name, req := range map[string]string{
		"http/1.0": "GET /v1/rooms/hs/events?user=alice HTTP/1.0\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		"two keys": "GET /v1/rooms/hs/events?user=bob HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	} {
		resp, _ := rawAnswer(t, s, req)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s; want 400 with the JSON error body", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if status, _ := call(t, s, "GET", "/v1/rooms/hs/events?since=0&wait=0", "", ""); status != 200 {
		t.Fatalf("poll: %d", status)
	}
	if evs := s.History(t, "/v1/rooms/hs/events"); len(evs) != 0 {
		t.Fatalf("the refused upgrades left %d events (logins?) in the room", len(evs))
	}
}

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
