package client_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

func TestNewChecksTheURLAndOptions(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://[::1", "http://127.0.0.1:99999", "http://127.0.0.1:0", "http://host:x"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	if _, err := client.New("http://127.0.0.1:1", client.WithHTTPClient(&http.Client{Timeout: time.Second})); err == nil {
		t.Error("New accepted an *http.Client with a Timeout")
	}
	c, err := client.New("ws://127.0.0.1:1/push/?x=1#f", client.WithUser("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL(); got != "http://127.0.0.1:1/push" {
		t.Errorf("BaseURL() = %q", got)
	}
	if c.User() != "alice" {
		t.Errorf("User() = %q", c.User())
	}
}

func TestPublishReturnsTheStoredEvent(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	ctx := context.Background()
	first, err := c.Publish(ctx, "lobby", "hello <world> & \"you\"")
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 || first.Epoch == "" || first.Stream != "room/lobby" || first.Type != protocol.TypeMessage ||
		first.User != "alice" || first.Text != "hello <world> & \"you\"" || first.Time.IsZero() {
		t.Fatalf("Publish = %+v", first)
	}
	second, err := c.Publish(ctx, "lobby", "again")
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq != 2 || second.Epoch != first.Epoch {
		t.Fatalf("second event at %s, first at %s", second.Cursor(), first.Cursor())
	}

	cur, err := c.Cursor(ctx, client.Room("lobby"))
	if err != nil {
		t.Fatal(err)
	}
	if cur != second.Cursor() {
		t.Fatalf("Cursor() = %s, want %s", cur, second.Cursor())
	}
	p, err := c.Poll(ctx, client.Room("lobby"), client.PollOptions{Since: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 || p.Events[0].Text != first.Text || p.Events[1].Text != "again" || p.Cursor != second.Cursor().String() {
		t.Fatalf("Poll = %+v", p)
	}
	p, err = c.Poll(ctx, client.Room("lobby"), client.PollOptions{Since: p.Cursor, Wait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 0 || p.Cursor != second.Cursor().String() {
		t.Fatalf("long poll with nothing new = %+v", p)
	}
}

func TestServerErrorsAreProtocolErrors(t *testing.T) {
	s := pushdtest.Start(t, server.Config{MaxTextBytes: 10})
	alice := newClient(t, s, "alice")
	nobody := newClient(t, s, "")
	ctx := context.Background()
	cases := []struct {
		name   string
		call   func() error
		status int
		code   string
		op     string
	}{
		{"bad room", func() error { _, err := alice.Publish(ctx, "no!", "x"); return err }, 400, protocol.CodeInvalidName, "publish to room no!"},
		{"no user", func() error { _, err := nobody.Publish(ctx, "lobby", "x"); return err }, 400, protocol.CodeInvalidName, "publish to room lobby"},
		{"empty text", func() error { _, err := alice.Publish(ctx, "lobby", ""); return err }, 400, protocol.CodeEmptyText, "publish to room lobby"},
		{"text too long", func() error { _, err := alice.Publish(ctx, "lobby", strings.Repeat("x", 11)); return err }, 413, protocol.CodeTextTooLong, "publish to room lobby"},
		{"presence of bad room", func() error { _, err := alice.Presence(ctx, "a b"); return err }, 400, protocol.CodeInvalidName, "presence of room a b"},
		{"bad cursor", func() error {
			_, err := alice.Poll(ctx, client.Room("lobby"), client.PollOptions{Since: "x:y"})
			return err
		}, 400, protocol.CodeInvalidCursor, "poll room lobby"},
		{"no such task", func() error { _, err := alice.GetTask(ctx, "nope"); return err }, 404, protocol.CodeNotFound, "get task nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T), want a *protocol.Error", err, err)
			}
			if pe.Status != tc.status || pe.Code != tc.code || pe.Message == "" {
				t.Fatalf("got %d %s %q, want %d %s", pe.Status, pe.Code, pe.Message, tc.status, tc.code)
			}
			if !strings.HasPrefix(err.Error(), tc.op+": ") {
				t.Fatalf("error %q does not start with %q", err, tc.op)
			}
		})
	}
}

func TestAnswersFromSomethingElseAreProtocolErrorsToo(t *testing.T) {
	s := startPushd(t, pushdtest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/presence") {
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	_, err := newClient(t, s, "alice").Presence(context.Background(), "lobby")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusBadGateway || pe.Code != "" || !strings.Contains(pe.Message, "bad gateway") {
		t.Fatalf("error %v, want a 502 *protocol.Error without a code, quoting the body", err)
	}
}

func TestNotPushdTellsAnotherServersAnswers(t *testing.T) {
	s := startPushd(t, pushdtest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodPost:
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusNotImplemented)
				io.WriteString(w, "<html>\n<body>Unsupported method</body>\n</html>\n")
			case r.URL.Path == "/v1/tasks":
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, "<html>a page for every path</html>")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}))
	c := newClient(t, s, "alice")
	ctx := context.Background()
	_, err := c.Publish(ctx, "lobby", "hi")
	if status, ok := client.NotPushd(err); !ok || status != http.StatusNotImplemented {
		t.Errorf("publish answered by another server: NotPushd(%v) = %d, %v; want 501, true", err, status, ok)
	}
	_, err = c.ListTasks(ctx)
	if status, ok := client.NotPushd(err); !ok || status != http.StatusOK {
		t.Errorf("an HTML 200 for the task list: NotPushd(%v) = %d, %v; want 200, true", err, status, ok)
	}
	// pushd's own answers, errors included, are pushd's.
	_, err = c.Presence(ctx, "no!")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidName {
		t.Fatalf("presence of a bad room: %v", err)
	}
	if _, ok := client.NotPushd(err); ok {
		t.Errorf("NotPushd(%v) = true for pushd's own error", err)
	}
	if _, ok := client.NotPushd(nil); ok {
		t.Error("NotPushd(nil) = true")
	}
}

func TestTokenUser(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	tok := pushdtest.Token(t, secret, "alice", server.Claims{Rooms: []string{"lobby"}, Publish: true}, time.Hour)
	if user, err := client.TokenUser(tok); err != nil || user != "alice" {
		t.Fatalf("TokenUser = %q, %v; want alice", user, err)
	}
	if user, err := client.TokenUser(" " + tok + "\n"); err != nil || user != "alice" {
		t.Fatalf("TokenUser with spaces around = %q, %v; want alice", user, err)
	}
	// Read, not verified: a token signed with another secret names its
	// user all the same (the server is the one to refuse it).
	other := pushdtest.Token(t, []byte("another-secret-another-secret!!"), "bob", server.Claims{}, time.Hour)
	if user, err := client.TokenUser(other); err != nil || user != "bob" {
		t.Fatalf("TokenUser of another secret's token = %q, %v; want bob", user, err)
	}
	claims := func(json string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(json)) + ".c2ln"
	}
	for _, bad := range []string{"", "not-a-token", "a.b", "a.!!!.c", claims(`[1]`), claims(`{"exp":1}`), claims(`{"sub":"a b"}`), claims(`{"sub":7}`)} {
		if user, err := client.TokenUser(bad); err == nil {
			t.Errorf("TokenUser(%q) = %q, want an error", bad, user)
		}
	}
}

func TestNetworkErrorsNameTheOperation(t *testing.T) {
	s := startPushd(t)
	url := s.URL
	s.Stop(t) // nothing listens there any more
	c, err := client.New(url, client.WithUser("alice"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Publish(context.Background(), "lobby", "hi")
	var pe *protocol.Error
	if err == nil || errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "publish to room lobby: ") {
		t.Fatalf("error %v, want a network error naming the operation", err)
	}
}

func TestPresence(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	ctx := context.Background()
	users, err := c.Presence(ctx, "lobby")
	if err != nil || users == nil || len(users) != 0 {
		t.Fatalf("Presence of an empty room = %q, %v; want an empty list", users, err)
	}
	for _, u := range []string{"zed", "bob"} {
		subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{User: u})
	}
	waitFor(t, func() error {
		if users, err = c.Presence(ctx, "lobby"); err != nil || !slices.Equal(users, []string{"bob", "zed"}) {
			return fmt.Errorf("present: %q, %v; want bob and zed", users, err)
		}
		return nil
	})
}

func TestRateLimitSaysWhenToRetry(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Limits: server.Limits{PublishRate: 0.01, PublishBurst: 1}})
	c := newClient(t, s, "alice")
	publish(t, c, "lobby", "one")
	_, err := c.Publish(context.Background(), "lobby", "two")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusTooManyRequests || pe.Code != protocol.CodeRateLimited {
		t.Fatalf("second publish: %v, want 429 rate_limited", err)
	}
	if client.RetryAfter(err) <= 0 || pe.RetryAfter != client.RetryAfter(err) {
		t.Fatalf("RetryAfter(%v) = %s (the error's %s), want the server's Retry-After", err, client.RetryAfter(err), pe.RetryAfter)
	}
}

func TestTokensAreSent(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	s := pushdtest.Start(t, server.Config{AuthSecret: secret})
	tok := pushdtest.Token(t, secret, "carol", server.Claims{Rooms: []string{"lobby"}, Publish: true, Tasks: true}, time.Hour)
	ctx := context.Background()
	_, err := newClient(t, s, "carol").Publish(ctx, "lobby", "no token")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeUnauthorized {
		t.Fatalf("without a token: %v, want unauthorized", err)
	}
	c := newClient(t, s, "", client.WithToken(tok))
	ev, err := c.Publish(ctx, "lobby", "with a token")
	if err != nil || ev.User != "carol" {
		t.Fatalf("with a token: %+v, %v", ev, err)
	}
	_, err = c.Publish(ctx, "elsewhere", "not allowed")
	if !errors.As(err, &pe) || pe.Code != protocol.CodeForbidden {
		t.Fatalf("to a room the token does not name: %v, want forbidden", err)
	}
	if _, err := c.ListTasks(ctx); err != nil {
		t.Fatalf("ListTasks with a token: %v", err)
	}
}

func TestBaseURLWithPathPrefix(t *testing.T) {
	s := startPushd(t, pushdtest.Wrap(func(next http.Handler) http.Handler {
		return http.StripPrefix("/push", next)
	}))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.New(s.URL+"/push/", client.WithUser("alice"), client.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	want, err := c.Publish(context.Background(), "lobby", "behind a prefix")
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, recv(t, sub), *want)
}

func TestStreams(t *testing.T) {
	cases := []struct {
		s          client.Stream
		name, text string
	}{
		{client.Room("lobby"), "room/lobby", "room lobby"},
		{client.Tasks(), "tasks", "tasks"},
		{client.Task("t1"), "tasks", "task t1"},
	}
	for _, tc := range cases {
		if tc.s.Name() != tc.name || tc.s.String() != tc.text {
			t.Errorf("%v: Name %q String %q", tc.s, tc.s.Name(), tc.s.String())
		}
	}
	c, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	sub := c.Subscribe(context.Background(), client.Stream{}, client.SubscribeOptions{})
	<-sub.Done()
	if sub.Err() == nil {
		t.Fatal("a zero Stream was accepted")
	}
}

func TestParseTransport(t *testing.T) {
	for in, want := range map[string]client.Transport{"": client.TransportAuto, "auto": client.TransportAuto, "ws": client.TransportWebSocket,
		"sse": client.TransportSSE, "longpoll": client.TransportLongPoll, "poll": client.TransportPoll} {
		if got, err := client.ParseTransport(in); err != nil || got != want {
			t.Errorf("ParseTransport(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := client.ParseTransport("carrier-pigeon"); err == nil {
		t.Error("ParseTransport accepted an unknown name")
	}
}

func TestCutSuccessIsErrAnswerBody(t *testing.T) {
	s := startPushd(t, pushdtest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"stream":"room/lobby","se`)
		})
	}))
	c := newClient(t, s, "alice")
	_, err := c.Publish(context.Background(), "lobby", "hi")
	if !errors.Is(err, client.ErrAnswerBody) || !strings.Contains(err.Error(), "decode 201 answer") {
		t.Fatalf("publish with its 201 cut short: %v; want ErrAnswerBody", err)
	}
	if _, err := c.Presence(context.Background(), "lobby"); errors.Is(err, client.ErrAnswerBody) {
		t.Fatalf("a whole answer: %v", err)
	}
}
