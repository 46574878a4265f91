// Package testlog passes a server's log lines to a test's log, and stops
// doing so when the test ends, so a line logged late cannot reach a
// finished test; and keeps what a logger or a process writes for a test
// to read (Buffer).
package testlog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Writer is an io.Writer for a slog handler, writing each line to t.Log
// until Stop.
type Writer struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

// New returns a Writer for t.
func New(t testing.TB) *Writer { return &Writer{t: t} }

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// Stop drops every later line.
func (w *Writer) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

// Logger returns a text logger of lines at level and above that writes to
// t.Log until the test ends. Call it before starting what logs to it:
// its Stop is a cleanup of t, and cleanups run last first, so it then
// runs after that thing's own.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	w := New(t)
	t.Cleanup(w.Stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Buffer keeps what is written to it, from any goroutine, for a test to
// read while the writing goes on: a logger's lines, a process's output.
// The zero Buffer is empty and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns all that has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
