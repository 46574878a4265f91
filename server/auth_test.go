package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

var authSecret = []byte("a-test-secret-of-32-bytes-length")

// authServer starts a server that needs tokens signed with authSecret.
func authServer(t *testing.T, cfg server.Config) *pushdtest.Server {
	t.Helper()
	cfg.AuthSecret = authSecret
	return pushdtest.Start(t, cfg)
}

func mint(t *testing.T, user string, c server.Claims) string {
	t.Helper()
	tok, err := server.MintToken(authSecret, user, c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call makes a request with token as a bearer token ("": none) and
// returns the status and the error code ("" for a success).
func call(t *testing.T, s *pushdtest.Server, method, path, token, body string, header ...string) (int, string) {
	t.Helper()
	bearer := ""
	if token != "" {
		bearer = "Bearer " + token
	}
	a := s.Request(t, t.Context(), method, path, body, append([]string{"Authorization", bearer}, header...)...)
	return a.Status, a.Code(t)
}

func TestAuth(t *testing.T) {
	s := authServer(t, server.Config{})
	alice := mint(t, "alice", server.Claims{Rooms: []string{"lobby", "dev-*"}, Publish: true})
	reader := mint(t, "rita", server.Claims{Rooms: []string{"lobby"}})
	tasker := mint(t, "tom", server.Claims{Tasks: true})
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, server.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}}).SignedString(authSecret)
	foreign, _ := server.MintToken([]byte("another-secret-of-enough-length"), "alice", server.Claims{Rooms: []string{"*"}, Publish: true, Tasks: true}, time.Hour)
	noneAlg := jwt.NewWithClaims(jwt.SigningMethodNone, server.Claims{Rooms: []string{"*"}, Publish: true, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
	unsigned, _ := noneAlg.SignedString(jwt.UnsafeAllowNoneSignatureType)

	msg := `{"text":"hi"}`
	tests := []struct {
		name, method, path, token, body string
		header                          []string
		status                          int
		code                            string
	}{
		{"no token", "GET", "/v1/rooms/lobby/presence", "", "", nil, 401, protocol.CodeUnauthorized},
		{"expired", "GET", "/v1/rooms/lobby/presence", expired, "", nil, 401, protocol.CodeUnauthorized},
		{"other secret", "GET", "/v1/rooms/lobby/presence", foreign, "", nil, 401, protocol.CodeUnauthorized},
		{"alg none", "GET", "/v1/rooms/lobby/presence", unsigned, "", nil, 401, protocol.CodeUnauthorized},
		{"garbage", "GET", "/v1/rooms/lobby/presence", "not.a.token", "", nil, 401, protocol.CodeUnauthorized},
		{"basic auth", "GET", "/v1/rooms/lobby/presence", "", "", []string{"Authorization", "Basic YTpi"}, 401, protocol.CodeUnauthorized},
		{"allowed room", "GET", "/v1/rooms/lobby/presence", alice, "", nil, 200, ""},
		{"pattern room", "GET", "/v1/rooms/dev-backend/presence", alice, "", nil, 200, ""},
		{"other room", "GET", "/v1/rooms/secret/presence", alice, "", nil, 403, protocol.CodeForbidden},
		{"token in query", "GET", "/v1/rooms/lobby/events?wait=0&token=" + alice, "", "", nil, 200, ""},
		{"subscribe as another user", "GET", "/v1/rooms/lobby/events?wait=0&user=bob", alice, "", nil, 403, protocol.CodeForbidden},
		{"subscribe as self", "GET", "/v1/rooms/lobby/events?wait=0&user=alice", alice, "", nil, 200, ""},
		{"publish", "POST", "/v1/rooms/lobby/messages", alice, msg, nil, 201, ""},
		{"publish as another", "POST", "/v1/rooms/lobby/messages", alice, `{"user":"bob","text":"hi"}`, nil, 403, protocol.CodeForbidden},
		{"publish without grant", "POST", "/v1/rooms/lobby/messages", reader, msg, nil, 403, protocol.CodeForbidden},
		{"watch tasks", "GET", "/v1/tasks", reader, "", nil, 200, ""},
		{"start task without grant", "POST", "/v1/tasks", alice, `{"kind":"demo","total":1,"interval":"1ms"}`, nil, 403, protocol.CodeForbidden},
		{"start task", "POST", "/v1/tasks", tasker, `{"kind":"demo","total":1,"interval":"1ms"}`, nil, 201, ""},
		{"health needs no token", "GET", "/healthz", "", "", nil, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code := call(t, s, tc.method, tc.path, tc.token, tc.body, tc.header...)
			if status != tc.status || code != tc.code {
				t.Fatalf("%s %s: %d %q; want %d %q", tc.method, tc.path, status, code, tc.status, tc.code)
			}
		})
	}

	// The posted message is alice's, whatever the body said.
	evs, _ := s.Poll(t, "/v1/rooms/lobby/events", "since=0&wait=0&token="+alice)
	var texts []string
	for _, ev := range evs {
		if ev.Type == protocol.TypeMessage {
			texts = append(texts, ev.User+":"+ev.Text)
		}
	}
	if strings.Join(texts, ",") != "alice:hi" {
		t.Fatalf("messages in lobby = %v; want only alice:hi (refused requests change nothing)", texts)
	}
}

func TestMintTokenRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret []byte
		user   string
		rooms  []string
		ttl    time.Duration
	}{
		{"short secret", []byte("short"), "alice", nil, time.Hour},
		{"bad user", authSecret, "al ice", nil, time.Hour},
		{"bad pattern", authSecret, "alice", []string{"[x"}, time.Hour},
		{"no lifetime", authSecret, "alice", nil, 0},
	} {
		if _, err := server.MintToken(tc.secret, tc.user, server.Claims{Rooms: tc.rooms}, tc.ttl); err == nil {
			t.Errorf("%s: MintToken succeeded; want an error", tc.name)
		}
	}
}

func TestOrigins(t *testing.T) {
	s := pushdtest.Start(t, server.Config{AllowOrigins: []string{"*.example.com", "https://app.example.org"}})
	own := s.URL
	for _, tc := range []struct {
		origin string
		status int
	}{
		{"", 200},
		{own, 200},
		{"https://chat.example.com", 200},
		{"https://app.example.org", 200},
		{"http://app.example.org", 403},
		{"https://evil.example.net", 403},
		{"null", 403},
	} {
		var hdr []string
		if tc.origin != "" {
			hdr = []string{"Origin", tc.origin}
		}
		status, _ := call(t, s, "GET", "/v1/rooms/lobby/presence", "", "", hdr...)
		if status != tc.status {
			t.Errorf("Origin %q: %d; want %d", tc.origin, status, tc.status)
		}
	}
	// A preflight from an allowed origin gets the CORS answer.
	a := s.Request(t, t.Context(), http.MethodOptions, "/v1/rooms/lobby/messages", "", "Origin", "https://chat.example.com", "Access-Control-Request-Method", "POST")
	if a.Status != http.StatusNoContent || a.Header.Get("Access-Control-Allow-Origin") != "https://chat.example.com" ||
		!strings.Contains(a.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", a.Status, a.Header)
	}
}

// shortToken mints a token for user that expires within two seconds, and
// returns it with its expiry.
func shortToken(t *testing.T, user string) (string, time.Time) {
	t.Helper()
	tok, err := server.MintToken(authSecret, user, server.Claims{Rooms: []string{"*"}, Publish: true}, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return tok, c.ExpiresAt.Time
}

// A live subscription ends within a second of its token's expiry, with a
// close that says so, and nothing of the stream is lost: the events
// published before the end came first. The same token is then refused.
func TestSubscriptionsEndWhenTheTokenExpires(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{AuthSecret: authSecret, Heartbeat: time.Hour})
	pub := mint(t, "pub", server.Claims{Rooms: []string{"*"}, Publish: true})
	for _, kind := range []string{pushdtest.WS, pushdtest.WSBatch, pushdtest.SSE} {
		t.Run(kind, func(t *testing.T) {
			room := "expiry-" + kind
			tok, exp := shortToken(t, "ann")
			sub := srv.Subscribe(t, kind, pushdtest.RoomPath(room)+"?since=0&token="+tok, pushdtest.SubOptions{})
			if a := srv.Post(t, "/v1/rooms/"+room+"/messages", `{"text":"before"}`, bearer(pub)...); a.Status != http.StatusCreated {
				t.Fatalf("publish: %d %s", a.Status, a.Body)
			}
			if ev := sub.Next(t); ev.Text != "before" {
				t.Fatalf("first event %s; want the message", pushdtest.OneLine(ev))
			}
			ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
			defer cancel()
			_, err := sub.Read(ctx)
			ended := time.Now()
			want := "sse close " + protocol.CloseTokenExpired
			if kind != pushdtest.SSE {
				want = fmt.Sprintf("ws close %d %s", protocol.CloseCodeTokenExpired, protocol.CloseTokenExpired)
			}
			if err == nil || err.Error() != (&pushdtest.Ended{How: want}).Error() {
				t.Fatalf("after the token's expiry: %v; want the stream to end with %q", err, want)
			}
			if late := ended.Sub(exp); late < 0 || late > time.Second {
				t.Fatalf("ended %s after the expiry; want within a second, not before", late)
			}
			a := srv.Get(t, pushdtest.RoomPath(room)+"?wait=0&since=0", bearer(tok)...)
			if a.Status != http.StatusUnauthorized || !strings.Contains(a.Error(t).Message, "expired") {
				t.Fatalf("the expired token again: %d %s; want 401 saying it expired", a.Status, a.Body)
			}
		})
	}
}

// A long poll answers by its token's expiry at the latest.
func TestLongPollAnswersByTheTokenExpiry(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{AuthSecret: authSecret, LongPollWait: time.Minute})
	tok, exp := shortToken(t, "ann")
	a := srv.Get(t, pushdtest.RoomPath("lobby")+"?since=0&wait=1m", bearer(tok)...)
	answered := time.Now()
	if a.Status != http.StatusOK {
		t.Fatalf("long poll: %d %s", a.Status, a.Body)
	}
	if late := answered.Sub(exp); late > time.Second || late < -100*time.Millisecond {
		t.Fatalf("answered %s after the token's expiry; want at it", late)
	}
}
