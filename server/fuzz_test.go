package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// The fuzz targets of what untrusted clients send: tokens, WebSocket
// frames, task and publish requests. Their seed corpora run as normal
// tests.

// FuzzToken sends arbitrary text as a bearer token: it is refused with 401
// and the error body, never accepted and never a crash.
func FuzzToken(f *testing.F) {
	good, err := server.MintToken(authSecret, "alice", server.Claims{Rooms: []string{"*"}, Publish: true, Tasks: true}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "x", "a.b.c", good[:len(good)-2] + "xx", good + ".", strings.Repeat("A", 5000),
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsInJvb21zIjpbIioiXSwiZXhwIjo5OTk5OTk5OTk5fQ.",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIvLi4vIiwiZXhwIjo5OTk5OTk5OTk5fQ.sig"} {
		f.Add(seed)
	}
	srv, err := server.New(server.Config{AuthSecret: authSecret, AllowedHosts: []string{newRequestHost}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/rooms/lobby/presence", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if token == good {
			return
		}
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `"code":"`+protocol.CodeUnauthorized+`"`) {
			t.Fatalf("token %q: %d %s; want 401 unauthorized", token, rec.Code, rec.Body.String())
		}
	})
}

// FuzzWebSocketFromClient writes arbitrary bytes to a subscribed WebSocket,
// as a misbehaving client would: the server may close that connection, but
// it never crashes and keeps serving others.
func FuzzWebSocketFromClient(f *testing.F) {
	for _, seed := range [][]byte{
		{0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1}, // a masked text message
		{0x89, 0x80, 0, 0, 0, 0},                                     // a ping
		{0x88, 0x82, 0, 0, 0, 0, 3, 232},                             // a close
		{0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // a huge length
		{0x01, 0x00}, // unmasked, fragmented
		{0xff, 0xff, 0xff},
	} {
		f.Add(seed)
	}
	ts := pushdtest.Start(f, server.Config{}, pushdtest.LogLevel(slog.LevelWarn))
	addr := strings.TrimPrefix(ts.URL, "http://")
	f.Fuzz(func(t *testing.T, frames []byte) {
		c, _, resp := rawRequest(t, ts, "GET /v1/rooms/fuzz/events HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v", resp)
		}
		_, _ = c.Write(frames)
		// The server still serves: a publish goes through.
		if a := ts.Post(t, "/v1/rooms/fuzz/messages", `{"user":"f","text":"still here"}`); a.Status != http.StatusCreated {
			t.Fatalf("publish after %x: %d %s", frames, a.Status, a.Body)
		}
	})
}

// FuzzTaskRequests sends arbitrary bodies to the task endpoints that take
// one: they are accepted or refused with a documented 4xx, never a 5xx or
// a crash.
func FuzzTaskRequests(f *testing.F) {
	for _, seed := range []string{`{"kind":"demo","total":3,"interval":"1ms"}`, `{"kind":"external","total":5}`, `{"kind":"demo","fail_at":-1}`,
		`{"kind":7}`, `{"done":1}`, `{"percent":101}`, `{"state":"cancelled"}`, `{"done":-5,"message":"x"}`, `[]`, `null`, `{`, ``,
		`{"kind":"demo","interval":"1h","total":1e9}`, `{"total":9223372036854775807,"done":9223372036854775807}`} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(1))
	}
	srv, err := server.New(server.Config{AllowedHosts: []string{newRequestHost}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	// One external task takes the progress reports.
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, jsonRequest(http.MethodPost, "/v1/tasks", `{"kind":"external","total":10}`))
	var ext protocol.Task
	if err := json.Unmarshal(rec.Body.Bytes(), &ext); err != nil || ext.ID == "" {
		f.Fatalf("start external task: %d %s", rec.Code, rec.Body)
	}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		path := "/v1/tasks"
		if which%2 == 1 {
			path = "/v1/tasks/" + ext.ID + "/progress"
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, jsonRequest(http.MethodPost, path, body))
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error":{"code":"`) {
			t.Fatalf("POST %s %q: %d without the error body: %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusCreated {
			var task protocol.Task
			if json.Unmarshal(rec.Body.Bytes(), &task) == nil && !task.State.Final() {
				srv.ServeHTTP(httptest.NewRecorder(), jsonRequest(http.MethodPost, "/v1/tasks/"+task.ID+"/cancel", ""))
			}
		}
	})
}

// FuzzPublishRequest drives the publish handler with arbitrary bodies and
// content types: the answer is never a 5xx and never a panic; it is 201
// with the stored message, or a documented 4xx with the error body; and a
// 201 happens exactly when the body is one well-formed request. Its seed
// corpus runs as a normal test.
func FuzzPublishRequest(f *testing.F) {
	for _, seed := range []struct{ ctype, body string }{
		{"application/json", `{"user":"alice","text":"hi"}`},
		{"application/json", `{"user":"alice","text":"hi"}` + "\n"},
		{"application/json; charset=utf-8", `{"text":"<&>","user":"a.b-c_d"}`},
		{"application/json", `{"user":"alice","text":"hi","x":1}`},
		{"application/json", `{"user":"alice","text":"hi"}{}`},
		{"application/json", `{"user":"alice","text":5}`},
		{"application/json", `{"user":"alice","text":""}`},
		{"application/json", `{"user":"a/b","text":"x"}`},
		{"application/json", `{"user":"alice","text":"` + strings.Repeat("x", 4097) + `"}`},
		{"application/json", `{"user":"alice","text":"\ud800"}`},
		{"application/json", `{"user":"alice","text":"\u001b]0;pwned\u0007\u001b[2J"}`},
		{"application/json", `{"user":"alice","text":"two\nlines\tand a tab"}`},
		{"application/json", `{"user":"alice","text":"c1 \u009b2J"}`},
		{"application/json", "{\"user\":\"alice\",\"text\":\"\xff\"}"},
		{"application/json", `null`},
		{"application/json", `[]`},
		{"application/json", `{"USER":"alice","Text":"case"}`},
		{"application/json", `{"user":"alice","user":"bob","text":"dup"}`},
		{"application/json", `{`},
		{"application/json", ``},
		{"text/plain", `{"user":"alice","text":"hi"}`},
		{"", `{"user":"alice","text":"hi"}`},
		{"application/json;;", `{}`},
	} {
		f.Add(seed.ctype, []byte(seed.body))
	}
	srv, err := server.New(server.Config{History: 100, AllowedHosts: []string{newRequestHost}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			f.Error(err)
		}
	})
	codes := map[int][]string{
		400: {protocol.CodeInvalidJSON, protocol.CodeInvalidName, protocol.CodeEmptyText, protocol.CodeInvalidParam},
		413: {protocol.CodeTextTooLong, protocol.CodeBodyTooLarge},
		415: {protocol.CodeUnsupportedMedia},
	}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/rooms/fuzz/messages", bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("Content-Type %q body %q: %d %s", ctype, body, rec.Code, rec.Body)
		}
		well, judged := wellFormedPublish(ctype, body)
		if rec.Code == http.StatusCreated {
			var ev protocol.Event
			if err := json.Unmarshal(rec.Body.Bytes(), &ev); err != nil || ev.Type != protocol.TypeMessage || ev.Seq == 0 || ev.Stream != "room/fuzz" {
				t.Fatalf("body %q: 201 with %s", body, rec.Body)
			}
			if judged && (well == nil || ev.User != well.User || ev.Text != well.Text) {
				t.Fatalf("Content-Type %q body %q was accepted as %s; want it refused", ctype, body, rec.Body)
			}
			return
		}
		if judged && well != nil {
			t.Fatalf("Content-Type %q body %q: %d %s; want 201", ctype, body, rec.Code, rec.Body)
		}
		var e protocol.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message == "" {
			t.Fatalf("body %q: %d with %q; want the error body", body, rec.Code, rec.Body)
		}
		known := false
		for _, c := range codes[rec.Code] {
			known = known || c == e.Error.Code
		}
		if !known {
			t.Fatalf("body %q: %d %s; not a documented answer", body, rec.Code, e.Error.Code)
		}
	})
}

// wellFormedPublish is an independent reading of the rules for the content
// types it judges (judged false for the others): it returns the request
// when ctype and body make an acceptable publish, else nil.
func wellFormedPublish(ctype string, body []byte) (req *protocol.PublishRequest, judged bool) {
	mt, _, _ := strings.Cut(ctype, ";")
	switch {
	case !strings.EqualFold(strings.TrimSpace(mt), "application/json"):
		return nil, true // 415
	case ctype != "application/json" && ctype != "application/json; charset=utf-8":
		return nil, false // media type parameters are the parser's business
	case len(body) > 64<<10:
		return nil, true
	case !utf8.Valid(body):
		return nil, true // JSON is UTF-8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var r protocol.PublishRequest
	if err := dec.Decode(&r); err != nil {
		return nil, true
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, true // something after the value
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil || raw == nil {
		return nil, true
	}
	if protocol.ValidateName("user", r.User) != nil || strings.TrimSpace(r.Text) == "" || len(r.Text) > 4096 || !utf8.ValidString(r.Text) {
		return nil, true
	}
	// Control characters (C0, DEL, C1) but newline (LF, CR LF) and tab
	// are refused.
	if strings.ContainsFunc(strings.ReplaceAll(r.Text, "\r\n", "\n"), func(c rune) bool { return c != '\n' && c != '\t' && (c < 0x20 || c >= 0x7f && c <= 0x9f) }) {
		return nil, true
	}
	return &r, true
}

// newRequestHost is the host of the requests httptest.NewRequest makes,
// which a server must be told it answers to.
const newRequestHost = "example.com"

func jsonRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}
