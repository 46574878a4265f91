// Package testlog passes a server's log lines to a test's log, and stops
// doing so when the test ends, so a line logged late cannot reach a
// finished test.
package testlog

import (
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
