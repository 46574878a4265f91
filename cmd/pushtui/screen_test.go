package main

import (
	"context"
	"io"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/internal/pushdtest"
)

// screen is pushtui drawing its screens in-process: keys go in through a
// pipe, the drawing comes out into a buffer, at a fixed size.
type screen struct {
	*running
	keys *io.PipeWriter
}

// startScreen runs pushtui with args as if on a terminal of w×h.
func startScreen(t *testing.T, getenv func(string) string, w, h int, args ...string) *screen {
	t.Helper()
	if getenv == nil {
		getenv = env()
	}
	in, keys := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: newSyncBuffer(), errOut: newSyncBuffer(), cancel: cancel, done: make(chan int, 1)}
	a := newApp(in, r.out, r.errOut, getenv)
	a.interactive = func() bool { return true }
	a.size = &tea.WindowSizeMsg{Width: w, Height: h}
	go func() {
		defer a.Close()
		r.done <- a.Exit(a.Run(ctx, args))
	}()
	s := &screen{running: r, keys: keys}
	t.Cleanup(func() {
		cancel()
		r.wait(t)
		keys.Close() // ends the program's input reader
	})
	return s
}

// press types keys ("\r" is Enter, "\x03" Ctrl+C).
func (s *screen) press(t *testing.T, keys string) {
	t.Helper()
	if _, err := io.WriteString(s.keys, keys); err != nil {
		t.Fatalf("typing %q: %v", keys, err)
	}
}

// waitScreen waits until the drawing, escape codes removed, holds wants.
func (s *screen) waitScreen(t *testing.T, wants ...string) {
	t.Helper()
	s.out.waitFor(t, strings.Join(wants, " and "), func(got string) bool {
		plain := ansi.Strip(got)
		for _, w := range wants {
			if !strings.Contains(plain, w) {
				return false
			}
		}
		return true
	})
}

// waitDrawn waits until the screen as last drawn (see drawn) holds wants.
// Unlike waitScreen, it does not see what has been drawn over since.
func (s *screen) waitDrawn(t *testing.T, wants ...string) {
	t.Helper()
	s.out.waitFor(t, strings.Join(wants, " and ")+" on the screen as last drawn", func(got string) bool {
		screen := strings.Join(drawn(got), "\n")
		for _, w := range wants {
			if !strings.Contains(screen, w) {
				return false
			}
		}
		return true
	})
}

// drawn is the screen, escape codes removed, as out last drew it. Bubble
// Tea draws each frame on the alternate screen from the top left, and a
// row it leaves as it was is a bare "\n".
func drawn(out string) []string {
	var rows []string
	frames := strings.Split(out, ansi.CursorHomePosition)
	for _, frame := range frames[1:] {
		for i, line := range strings.Split(frame, "\n") {
			if i == len(rows) {
				rows = append(rows, "")
			}
			if line != "" {
				rows[i] = ansi.Strip(line)
			}
		}
	}
	return rows
}

// TestChatScreensSeeEachOther: two chat screens over different transports
// see each other come, talk, and go.
func TestChatScreensSeeEachOther(t *testing.T) {
	srv := startServer(t)
	alice := startScreen(t, env("USER=alice"), 100, 24, "--server", srv.URL, "--transport", "ws", "chat", "--room", "r1")
	alice.waitScreen(t, "● connected · ws", "Here (1)")
	bob := startScreen(t, env("USER=bob"), 90, 20, "--server", srv.URL, "--transport", "longpoll", "chat", "--room", "r1")
	bob.waitScreen(t, "● connected · longpoll")
	alice.waitScreen(t, "→ bob joined", "Here (2)")

	alice.press(t, "hi bob\r")
	bob.waitScreen(t, "alice hi bob")
	bob.press(t, "hello alice\r")
	alice.waitScreen(t, "bob   hello alice")
	// A message is stored and shown before its send is answered, and
	// until then the input line keeps it: /quit would join it.
	bob.waitDrawn(t, "bob   hello alice", "› message #r1")

	bob.press(t, "/quit\r")
	bob.exits(t, 0)
	alice.waitScreen(t, "← bob left")
	alice.press(t, "\x03")
	alice.exits(t, 0)
}

// TestFollowScreen follows a task on a "terminal" to the end: exit 0, and
// the last drawing says how it went.
func TestFollowScreen(t *testing.T) {
	srv := startServer(t)
	id := startTask(t, srv, "--name", "build", "--total", "20", "--interval", "10ms")
	s := startScreen(t, nil, 80, 24, "--server", srv.URL, "watch-progress", "--task", id)
	s.exits(t, 0)
	s.waitScreen(t, "✓ build succeeded after", "20/20")
}

// followLongTask starts pushd, a long demo task on it and a screen that
// follows the task, and waits until the screen shows it running.
func followLongTask(t *testing.T) (*pushdtest.Server, string, *screen) {
	t.Helper()
	srv := startServer(t)
	id := startTask(t, srv, "--name", "long", "--total", "100000", "--interval", "10ms")
	s := startScreen(t, nil, 80, 24, "--server", srv.URL, "watch-progress", "--task", id)
	s.waitScreen(t, "running")
	return srv, id, s
}

// TestFollowScreenCancelled exits 1 when the task is cancelled, here with
// the c key.
func TestFollowScreenCancelled(t *testing.T) {
	_, _, s := followLongTask(t)
	s.press(t, "c")
	s.waitScreen(t, "cancel the task? y/n")
	s.press(t, "y")
	s.exits(t, 1)
	s.waitScreen(t, "long cancelled")
}

// TestFollowScreenStopped: q before the end exits 130.
func TestFollowScreenStopped(t *testing.T) {
	srv, id, s := followLongTask(t)
	s.press(t, "q")
	s.exits(t, cli.ExitInterrupted)
	pushtui(t, nil, "--server", srv.URL, "task", "cancel", id)
}

// TestWatchScreen: n starts a demo task that runs to the end on the
// screen; q quits.
func TestWatchScreen(t *testing.T) {
	srv := startServer(t)
	s := startScreen(t, nil, 110, 20, "--server", srv.URL, "watch-progress", "--demo-total", "10", "--demo-interval", "5ms")
	s.waitScreen(t, "no tasks yet", "● connected")
	s.press(t, "n")
	s.waitScreen(t, "started demo-", "✓ succeeded", "10/10")
	s.press(t, "q")
	s.exits(t, 0)
}
