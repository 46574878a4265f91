package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestSSEReaderParsesTheStandardFormat(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		want  []sseFrame
		retry time.Duration
	}{
		{"one frame", "id: e:1\nevent: message\ndata: {}\n\n", []sseFrame{{"message", "{}", "e:1"}}, 0},
		{"default type", "data: x\n\n", []sseFrame{{"message", "x", ""}}, 0},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []sseFrame{{"message", "a\nb\n", ""}}, 0},
		{"one space stripped", "data:  two spaces\n\n", []sseFrame{{"message", " two spaces", ""}}, 0},
		{"no space", "data:x\n\n", []sseFrame{{"message", "x", ""}}, 0},
		{"field without colon", "data\n\n", []sseFrame{{"message", "", ""}}, 0},
		{"CRLF", "event: a\r\ndata: 1\r\n\r\n", []sseFrame{{"a", "1", ""}}, 0},
		{"CR", "event: a\rdata: 1\r\r", []sseFrame{{"a", "1", ""}}, 0},
		{"comments and retry", ": hi\nretry: 1500\n\n: heartbeat\n\ndata: 1\n\n", []sseFrame{{"message", "1", ""}}, 1500 * time.Millisecond},
		{"bad retry ignored", "retry: 1s\n\ndata: 1\n\n", []sseFrame{{"message", "1", ""}}, 0},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []sseFrame{{"message", "a", "7"}, {"message", "b", "7"}}, 0},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", []sseFrame{{"message", "a", "1"}, {"message", "b", "1"}}, 0},
		{"event without data is not dispatched", "event: close\n\ndata: x\n\n", []sseFrame{{"message", "x", ""}}, 0},
		{"unknown fields ignored", "foo: bar\ndata: x\n\n", []sseFrame{{"message", "x", ""}}, 0},
		{"BOM", "\xEF\xBB\xBFdata: x\n\n", []sseFrame{{"message", "x", ""}}, 0},
		{"unfinished frame dropped", "data: x\n\ndata: y\n", []sseFrame{{"message", "x", ""}}, 0},
		{"close frame", "event: close\ndata: {\"reason\":\"r\"}\n\n", []sseFrame{{"close", `{"reason":"r"}`, ""}}, 0},
	}
	for _, tc := range cases {
		for _, split := range []struct {
			name string
			r    func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"bytewise", iotest.OneByteReader}} {
			t.Run(tc.name+"/"+split.name, func(t *testing.T) {
				r := newSSEReader(split.r(strings.NewReader(tc.in)))
				var got []sseFrame
				for {
					f, err := r.next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, f)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Fatalf("frame %d: got %q, want %q", i, got[i], tc.want[i])
					}
				}
				if r.retry != tc.retry {
					t.Fatalf("retry %s, want %s", r.retry, tc.retry)
				}
			})
		}
	}
}

func TestSSEReaderRefusesOverlongLines(t *testing.T) {
	r := newSSEReader(strings.NewReader("data: " + strings.Repeat("x", maxSSELine) + "\n\n"))
	if _, err := r.next(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("next() = %v, want a line-too-long error", err)
	}
}

func TestBackoffIsBoundedFullJitter(t *testing.T) {
	s := &Subscription{opts: SubscribeOptions{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for n := 1; n <= 100; n++ {
		ceil := min(time.Second, 100*time.Millisecond<<min(n-1, 10))
		for range 50 {
			if d := s.backoff(n, nil); d < 0 || d > ceil {
				t.Fatalf("try %d: wait %s outside [0, %s]", n, d, ceil)
			}
		}
	}
	// Retry-After is a floor, still capped.
	ra := &retryAfterError{err: nil, after: 700 * time.Millisecond}
	if d := s.backoff(1, ra); d < 700*time.Millisecond || d > time.Second {
		t.Fatalf("with Retry-After 700ms: wait %s", d)
	}
	ra.after = time.Hour
	if d := s.backoff(1, ra); d != time.Second {
		t.Fatalf("with Retry-After 1h: wait %s, want the cap", d)
	}
	// The SSE retry hint raises the ceiling, within the cap.
	s.hint = 500 * time.Millisecond
	seen := false
	for range 200 {
		d := s.backoff(1, nil)
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
