package tui

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

func newClient(t *testing.T, base string) *client.Client {
	t.Helper()
	c, err := client.New(base, client.WithUser("cat"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// firstDrop subscribes to room lobby on base over tr and returns the error
// of the first connection that ends (reconnecting or closed).
func firstDrop(t *testing.T, base string, tr client.Transport) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 1)
	sub := newClient(t, base).Subscribe(ctx, client.Room("lobby"), client.SubscribeOptions{
		Transport: tr, Since: "ep1:0", User: "cat", IdleTimeout: -1,
		OnState: func(sc client.StateChange) {
			if sc.State == client.StateReconnecting || sc.State == client.StateClosed {
				select {
				case errs <- sc.Err:
				default:
				}
			}
		},
	})
	defer sub.Close()
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
		t.Fatal("the connection did not end")
		return nil
	}
}

// answer writes pushd's error body.
func answer(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, msg)
}

// TestErrTextFromTheClient reads the errors the client really returns, from
// local servers that fail in the ways pushtui meets.
func TestErrTextFromTheClient(t *testing.T) {
	t.Run("no server: long poll and publish", func(t *testing.T) {
		base := "http://" + pushdtest.FreeAddr(t)
		c := newClient(t, base)
		_, err := c.Poll(context.Background(), client.Room("lobby"), client.PollOptions{Since: "ep1:0", Wait: 25 * time.Second, User: "cat"})
		if err == nil {
			t.Fatal("poll of a closed port worked")
		}
		if got, want := errText(err), "server unreachable (connection refused)"; got != want {
			t.Errorf("poll: %q, want %q (from %q)", got, want, err)
		}
		_, err = c.Publish(context.Background(), "lobby", "hi")
		if got, want := errText(err), "server unreachable (connection refused)"; got != want {
			t.Errorf("publish: %q, want %q (from %q)", got, want, err)
		}
		if got, want := errText(firstDrop(t, base, client.TransportLongPoll)), "server unreachable (connection refused)"; got != want {
			t.Errorf("subscription: %q, want %q", got, want)
		}
	})

	cases := []struct {
		name    string
		tr      client.Transport
		handler http.HandlerFunc
		want    string
	}{
		{"websocket dropped", client.TransportWebSocket, func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err == nil {
				c.CloseNow()
			}
		}, "the server closed the connection"},
		{"websocket closed for a restart", client.TransportWebSocket, func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err == nil {
				c.Close(protocol.CloseCodeServiceRestart, protocol.CloseShutdown)
			}
		}, "the server is restarting"},
		{"websocket refused", client.TransportWebSocket, func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusForbidden, protocol.CodeForbidden, "token does not allow room lobby")
		}, "token does not allow room lobby"},
		{"sse stream ended", client.TransportSSE, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
		}, "the server closed the connection"},
		{"sse closed for a slow consumer", client.TransportSSE, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			fmt.Fprintf(w, "event: close\ndata: {\"reason\":%q,\"message\":\"you fell behind\"}\n\n", protocol.CloseSlowConsumer)
		}, "the server dropped this connection for falling behind"},
		{"long poll through a proxy that fails", client.TransportLongPoll, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		}, "unexpected answer from the server (502 Bad Gateway)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			err := firstDrop(t, srv.URL, tc.tr)
			if got := errText(err); got != tc.want {
				t.Errorf("%q, want %q (from %q)", got, tc.want, err)
			}
		})
	}

	t.Run("a message over the server's limit", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusRequestEntityTooLarge, protocol.CodeTextTooLong, "the message text is 5000 bytes; the limit is 4096")
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL).Publish(context.Background(), "lobby", strings.Repeat("a", 5000))
		if got, want := errText(err), "the message text is 5000 bytes; the limit is 4096"; got != want {
			t.Errorf("%q, want %q (from %q)", got, want, err)
		}
		if client.Retryable(err) {
			t.Error("a 413 is retryable")
		}
	})
	t.Run("a server that does not answer", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := newClient(t, srv.URL).Publish(ctx, "lobby", "hi")
		if got, want := errText(err), "timed out"; got != want {
			t.Errorf("%q, want %q (from %q)", got, want, err)
		}
		if !client.Retryable(err) {
			t.Error("a timeout is not retryable")
		}
	})
}

func TestErrTextValues(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []struct {
		err  error
		want string
	}{
		{nil, "unknown error"},
		{errRefused, "server unreachable (connection refused)"},
		{errDropped, "the server closed the connection"},
		{fmt.Errorf("publish to room lobby: %w", context.Canceled), "cancelled"},
		{fmt.Errorf("publish: %w", context.DeadlineExceeded), "timed out"},
		{fmt.Errorf("websocket: %w for 45s", client.ErrQuiet), "timed out (nothing from the server)"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "pushd.invalid", IsNotFound: true}},
			"server unreachable (no such host pushd.invalid)"},
		{fmt.Errorf("get: %w", x509.UnknownAuthorityError{}), "TLS: the server's certificate is not trusted"},
		{fmt.Errorf("websocket: %w", &client.CloseError{Code: 1008, Reason: "too many connections from your address"}),
			"the server closed the connection: too many connections from your address"},
		{&client.CloseError{Code: 1013, Reason: protocol.CloseUnavailable}, "the server cannot reach its store for now"},
		{&client.CloseError{Reason: protocol.CloseShutdown, Message: "the server is restarting; reconnect"}, "the server is restarting"},
		{&protocol.Error{Status: 401, Code: protocol.CodeUnauthorized, Message: "the token has expired."}, "the token has expired"},
		{errors.New("odd \x1b[31mfailure"), "odd failure"},
		{errors.New(long), strings.Repeat("x", maxErrText-1) + "…"},
	}
	for _, tc := range cases {
		if got := errText(tc.err); got != tc.want {
			t.Errorf("errText(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
