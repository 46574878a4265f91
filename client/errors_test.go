package client_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

func TestServerErrorsAreProtocolErrors(t *testing.T) {
	s := pushdtest.Start(t, server.Config{MaxTextBytes: 10})
	alice := newClient(t, s, "alice")
	nobody := newClient(t, s, "")
	ctx := t.Context()
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
	_, err := newClient(t, s, "alice").Presence(t.Context(), "lobby")
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
	ctx := t.Context()
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

func TestNetworkErrorsNameTheOperation(t *testing.T) {
	s := startPushd(t)
	url := s.URL
	s.Stop(t) // nothing listens there any more
	c, err := client.New(url, client.WithUser("alice"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Publish(t.Context(), "lobby", "hi")
	var pe *protocol.Error
	if err == nil || errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "publish to room lobby: ") {
		t.Fatalf("error %v, want a network error naming the operation", err)
	}
}

func TestRateLimitSaysWhenToRetry(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Limits: server.Limits{PublishRate: 0.01, PublishBurst: 1}})
	c := newClient(t, s, "alice")
	publish(t, c, "lobby", "one")
	_, err := c.Publish(t.Context(), "lobby", "two")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusTooManyRequests || pe.Code != protocol.CodeRateLimited {
		t.Fatalf("second publish: %v, want 429 rate_limited", err)
	}
	if client.RetryAfter(err) <= 0 || pe.RetryAfter != client.RetryAfter(err) {
		t.Fatalf("RetryAfter(%v) = %s (the error's %s), want the server's Retry-After", err, client.RetryAfter(err), pe.RetryAfter)
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
	_, err := c.Publish(t.Context(), "lobby", "hi")
	if !errors.Is(err, client.ErrAnswerBody) || !strings.Contains(err.Error(), "decode 201 answer") {
		t.Fatalf("publish with its 201 cut short: %v; want ErrAnswerBody", err)
	}
	if _, err := c.Presence(t.Context(), "lobby"); errors.Is(err, client.ErrAnswerBody) {
		t.Fatalf("a whole answer: %v", err)
	}
}
