package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

func TestRetryableAndMayHaveApplied(t *testing.T) {
	answer := func(status int, code string) error {
		return fmt.Errorf("publish to room lobby: %w", &protocol.Error{Status: status, Code: code, Message: "m"})
	}
	cut := &url.Error{Op: "Post", URL: "http://x", Err: io.ErrUnexpectedEOF}
	dial := &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	timeout := &url.Error{Op: "Post", URL: "http://x", Err: context.DeadlineExceeded}
	cases := []struct {
		name              string
		err               error
		retryable, mayHad bool
	}{
		{"pushd 400", answer(400, protocol.CodeInvalidJSON), false, false},
		{"pushd 404", answer(404, protocol.CodeNotFound), false, false},
		{"a proxy's 404", answer(404, ""), false, false},
		{"pushd 413", answer(413, protocol.CodeTextTooLong), false, false},
		{"a proxy's 403", answer(403, ""), false, false},
		{"408", answer(408, protocol.CodeTimeout), true, true},
		{"429", answer(429, protocol.CodeRateLimited), true, false},
		{"pushd 503", answer(503, protocol.CodeUnavailable), true, true},
		{"a proxy's 502", answer(502, ""), true, true},
		{"200 instead of 101", &refusedError{transport: TransportWebSocket, err: &protocol.Error{Status: 200}}, false, false},
		{"ws refused with 503", &refusedError{transport: TransportWebSocket, err: &protocol.Error{Status: 503}}, true, true},
		{"success, body lost", &answerBodyError{status: 201, err: io.ErrUnexpectedEOF}, true, true},
		{"success, not pushd's body", &notPushdError{status: 201, msg: "201 answer is text/html, not JSON"}, false, false},
		{"connection refused", dial, true, false},
		{"connection cut", cut, true, true},
		{"timeout", timeout, true, true},
		{"handshake cut off", &refusedError{transport: TransportWebSocket, err: cut, transient: true}, true, true},
		{"sse not an event stream", &refusedError{transport: TransportSSE, err: &notPushdError{status: 200, msg: "x"}}, false, false},
		{"nothing heard", fmt.Errorf("sse: %w for 45s", ErrQuiet), true, false},
		{"close 1012", &CloseError{Code: 1012, Reason: protocol.CloseShutdown}, true, false},
		{"close 1008", &CloseError{Code: closePolicyViolation, Reason: "refused"}, false, false},
		{"sse close event", &CloseError{Reason: protocol.CloseSlowConsumer}, true, false},
		{"stream ended", fmt.Errorf("sse: the server ended the stream: %w", io.EOF), true, false},
		{"malformed event", fmt.Errorf("%w: x", errBadEvent), true, false},
	}
	for _, tc := range cases {
		if got := Retryable(tc.err); got != tc.retryable {
			t.Errorf("%s: Retryable(%v) = %v, want %v", tc.name, tc.err, got, tc.retryable)
		}
		if got := MayHaveApplied(tc.err); got != tc.mayHad {
			t.Errorf("%s: MayHaveApplied(%v) = %v, want %v", tc.name, tc.err, got, tc.mayHad)
		}
	}
	if Retryable(nil) || MayHaveApplied(nil) {
		t.Error("nil is retryable or may have applied")
	}
}

func TestRetryAfterIsTheAnswers(t *testing.T) {
	err := fmt.Errorf("publish: %w", (&protocol.Error{Status: 429, Code: protocol.CodeRateLimited}).RetryIn(3*time.Second))
	if got := RetryAfter(err); got != 3*time.Second {
		t.Fatalf("RetryAfter = %s, want 3s", got)
	}
	if got := RetryAfter(errors.New("x")); got != 0 {
		t.Fatalf("RetryAfter of no answer = %s", got)
	}
}

func TestReconnectBackoffIsBoundedFullJitter(t *testing.T) {
	p := SubscribeOptions{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}.retryPolicy()
	for n := 1; n <= 100; n++ {
		ceil := min(time.Second, 100*time.Millisecond<<min(n-1, 10))
		for range 50 {
			if d := p.Delay(n, 0, 0); d < 0 || d > ceil {
				t.Fatalf("try %d: wait %s outside [0, %s]", n, d, ceil)
			}
		}
	}
	// Retry-After is a floor, still capped.
	if d := p.Delay(1, 0, 700*time.Millisecond); d < 700*time.Millisecond || d > time.Second {
		t.Fatalf("with Retry-After 700ms: wait %s", d)
	}
	if d := p.Delay(1, 0, time.Hour); d != time.Second {
		t.Fatalf("with Retry-After 1h: wait %s, want the cap", d)
	}
	// The SSE retry hint raises the ceiling, within the cap.
	seen := false
	for range 200 {
		d := p.Delay(1, 500*time.Millisecond, 0)
		if d > 500*time.Millisecond {
			t.Fatalf("with hint 500ms: wait %s", d)
		}
		seen = seen || d > 100*time.Millisecond
	}
	if !seen {
		t.Fatal("the hint never raised the wait above MinBackoff in 200 tries")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:04:00 GMT": 0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
