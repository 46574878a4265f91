package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

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

// newRequestHost is the host of the requests httptest.NewRequest makes,
// which a server must be told it answers to.
const newRequestHost = "example.com"

func jsonRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}
