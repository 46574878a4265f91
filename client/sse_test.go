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
