package sse_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/pushd/push/internal/sse"
)

// event is an Event as strings.
type event struct{ typ, data, id string }

// readAll reads every event of r until the end of its stream.
func readAll(t *testing.T, r *sse.Reader) []event {
	t.Helper()
	var got []event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, event{string(ev.Type), string(ev.Data), string(ev.ID)})
	}
}

// chunks returns a reader that gives s in pieces of the given sizes, in
// turn, so line ends fall across reads.
func chunks(s string, sizes ...int) io.Reader {
	return &chunkReader{s: s, sizes: sizes}
}

type chunkReader struct {
	s     string
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := min(c.sizes[c.i%len(c.sizes)], len(p), len(c.s))
	c.i++
	copy(p, c.s[:n])
	c.s = c.s[n:]
	return n, nil
}

func TestReaderParsesTheStandardFormat(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		want  []event
		retry time.Duration
	}{
		{"one event", "id: e:1\nevent: message\ndata: {}\n\n", []event{{"message", "{}", "e:1"}}, 0},
		{"default type", "data: x\n\n", []event{{"message", "x", ""}}, 0},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []event{{"message", "a\nb\n", ""}}, 0},
		{"one space stripped", "data:  two spaces\n\n", []event{{"message", " two spaces", ""}}, 0},
		{"no space", "data:x\n\n", []event{{"message", "x", ""}}, 0},
		{"a colon in the value", "data: a: b\n\n", []event{{"message", "a: b", ""}}, 0},
		{"field without colon", "data\n\n", []event{{"message", "", ""}}, 0},
		{"CRLF", "event: a\r\ndata: 1\r\n\r\n", []event{{"a", "1", ""}}, 0},
		{"CR", "event: a\rdata: 1\r\r", []event{{"a", "1", ""}}, 0},
		{"mixed line ends", "data: 1\r\ndata: 2\rdata: 3\n\r\n", []event{{"message", "1\n2\n3", ""}}, 0},
		{"CR then LF is one line end", "data: 1\r\n\r\ndata: 2\r\r", []event{{"message", "1", ""}, {"message", "2", ""}}, 0},
		{"comments and retry", ": hi\nretry: 1500\n\n: heartbeat\n\ndata: 1\n\n", []event{{"message", "1", ""}}, 1500 * time.Millisecond},
		{"bad retry ignored", "retry: 1s\n\nretry: +5\n\nretry:\n\nretry: 99999999999\n\ndata: 1\n\n", []event{{"message", "1", ""}}, 0},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []event{{"message", "a", "7"}, {"message", "b", "7"}}, 0},
		{"empty id clears it", "id: 7\ndata: a\n\nid\ndata: b\n\n", []event{{"message", "a", "7"}, {"message", "b", ""}}, 0},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", []event{{"message", "a", "1"}, {"message", "b", "1"}}, 0},
		{"event without data is not dispatched", "event: close\n\ndata: x\n\n", []event{{"message", "x", ""}}, 0},
		{"unknown fields ignored", "foo: bar\ndata: x\n\n", []event{{"message", "x", ""}}, 0},
		{"BOM", "\xEF\xBB\xBFdata: x\n\n", []event{{"message", "x", ""}}, 0},
		{"BOM only at the start", "data: x\n\n\xEF\xBB\xBFdata: y\n\n", []event{{"message", "x", ""}}, 0},
		{"unfinished event dropped", "data: x\n\ndata: y\n", []event{{"message", "x", ""}}, 0},
		{"last line without its end dropped", "data: x\n\ndata: y", []event{{"message", "x", ""}}, 0},
		{"close event", "event: close\ndata: {\"reason\":\"r\"}\n\n", []event{{"close", `{"reason":"r"}`, ""}}, 0},
		{"long lines", "data: " + strings.Repeat("x", 100) + "\r\n\r\n", []event{{"message", strings.Repeat("x", 100), ""}}, 0},
	}
	splits := []struct {
		name string
		r    func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"bytewise", iotest.OneByteReader},
		{"halves", iotest.HalfReader},
	}
	for _, tc := range cases {
		for _, split := range splits {
			for _, size := range []int{16, 4 << 10} {
				r := sse.NewReader(split.r(strings.NewReader(tc.in)), size, 0)
				got := readAll(t, r)
				if len(got) != len(tc.want) {
					t.Fatalf("%s/%s/%d: got %q, want %q", tc.name, split.name, size, got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Fatalf("%s/%s/%d: event %d: got %q, want %q", tc.name, split.name, size, i, got[i], tc.want[i])
					}
				}
				if r.Retry() != tc.retry {
					t.Fatalf("%s/%s/%d: retry %s, want %s", tc.name, split.name, size, r.Retry(), tc.retry)
				}
			}
		}
	}
}

// A line end split across reads is one line end: a CR at the end of one
// read and an LF at the start of the next do not make a blank line.
func TestLineEndsAcrossReads(t *testing.T) {
	in := "data: 1\r\n\r\ndata: 2\r\ndata: 3\r\n\r\n"
	for size := 1; size <= len(in); size++ {
		got := readAll(t, sse.NewReader(chunks(in, size, 1, 2), 16, 0))
		want := []event{{"message", "1", ""}, {"message", "2\n3", ""}}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("chunks of %d: got %q, want %q", size, got, want)
		}
	}
}

// A lone CR ends a line at once: the event is handed over without waiting
// for the byte after it.
func TestLoneCRDispatchesAtOnce(t *testing.T) {
	pr, pw := io.Pipe()
	r := sse.NewReader(pr, 64, 0)
	go func() { _, _ = pw.Write([]byte("data: now\r\r")) }()
	ev, err := r.Next()
	if err != nil || string(ev.Data) != "now" {
		t.Fatalf("Next() = %q, %v", ev.Data, err)
	}
	go func() { _, _ = pw.Write([]byte("\ndata: next\n\n")); pw.Close() }()
	if got := readAll(t, r); len(got) != 1 || got[0].data != "next" {
		t.Fatalf("after the CR: %q", got)
	}
}

func TestReaderRefusesOverlongLines(t *testing.T) {
	for _, in := range []string{"data: " + strings.Repeat("x", 100) + "\n\n", "data: " + strings.Repeat("x", 100)} {
		r := sse.NewReader(strings.NewReader(in), 16, 64)
		if _, err := r.Next(); !errors.Is(err, sse.ErrLineTooLong) {
			t.Fatalf("Next() = %v, want ErrLineTooLong", err)
		}
	}
	r := sse.NewReader(strings.NewReader("data: "+strings.Repeat("x", 58)+"\n\n"), 16, 64)
	if ev, err := r.Next(); err != nil || len(ev.Data) != 58 {
		t.Fatalf("a line of 64 bytes: %d bytes, %v", len(ev.Data), err)
	}
}

func TestReaderErrorsAreReturned(t *testing.T) {
	boom := errors.New("boom")
	r := sse.NewReader(io.MultiReader(strings.NewReader("data: 1\n\ndata: 2\n"), iotest.ErrReader(boom)), 16, 0)
	if ev, err := r.Next(); err != nil || string(ev.Data) != "1" {
		t.Fatalf("first: %q, %v", ev.Data, err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("second: %v, want the read error", err)
	}
}

// Reset reads a new stream with the same buffers; the last event ID and
// the reconnection time carry over, and a half-read event does not.
func TestResetStartsANewStream(t *testing.T) {
	r := sse.NewReader(strings.NewReader("retry: 300\nid: 5\ndata: a\n\nevent: x\ndata: cut"), 16, 0)
	if got := readAll(t, r); len(got) != 1 || got[0] != (event{"message", "a", "5"}) {
		t.Fatalf("first stream: %q", got)
	}
	r.Reset(strings.NewReader("\xEF\xBB\xBFdata: b\n\n"))
	if got := readAll(t, r); len(got) != 1 || got[0] != (event{"message", "b", "5"}) {
		t.Fatalf("second stream: %q", got)
	}
	if r.Retry() != 300*time.Millisecond || r.LastID() != "5" {
		t.Fatalf("retry %s, last id %q", r.Retry(), r.LastID())
	}
}

// Reading an event allocates nothing once the buffers have grown.
func TestNextDoesNotAllocate(t *testing.T) {
	frame := "id: e:1\nevent: message\ndata: {\"seq\":1,\"text\":\"" + strings.Repeat("x", 300) + "\"}\n\n: heartbeat\n\n"
	src := &repeatReader{s: frame}
	r := sse.NewReader(src, 4<<10, 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per event", allocs)
	}
	// Lines longer than the read buffer too.
	r = sse.NewReader(src, 16, 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = r.Next() }); allocs != 0 {
		t.Fatalf("with a small buffer: %v allocations per event", allocs)
	}
}

// repeatReader gives s again and again.
type repeatReader struct {
	s   string
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

func BenchmarkNext(b *testing.B) {
	frame := "id: e:1\nevent: message\ndata: {\"seq\":1,\"text\":\"" + strings.Repeat("x", 200) + "\"}\n\n"
	r := sse.NewReader(&repeatReader{s: frame}, 4<<10, 0)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// How a stream is cut into reads never changes its events.
func FuzzReadsDoNotMatter(f *testing.F) {
	f.Add("id: 1\nevent: a\ndata: x\r\n\r\ndata: y\rdata: z\r\r: c\n\n", 3)
	f.Add("\xEF\xBB\xBFretry: 10\ndata\n\n", 1)
	f.Fuzz(func(t *testing.T, in string, size int) {
		size = 1 + abs(size)%64
		whole := sse.NewReader(strings.NewReader(in), 16, 1<<10)
		cut := sse.NewReader(chunks(in, size, 1), 16, 1<<10)
		for {
			a, errA := whole.Next()
			b, errB := cut.Next()
			if (errA == nil) != (errB == nil) || !errors.Is(errB, errA) && errA != nil {
				t.Fatalf("errors %v and %v", errA, errB)
			}
			if errA != nil {
				break
			}
			if string(a.Type) != string(b.Type) || string(a.Data) != string(b.Data) || string(a.ID) != string(b.ID) {
				t.Fatalf("%q/%q/%q and %q/%q/%q", a.Type, a.Data, a.ID, b.Type, b.Data, b.ID)
			}
		}
		if whole.Retry() != cut.Retry() {
			t.Fatalf("retry %s and %s", whole.Retry(), cut.Retry())
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
