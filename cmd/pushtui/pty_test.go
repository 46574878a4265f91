//go:build !windows

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"
	"github.com/pushd/push/internal/pushdtest"
)

// terminal is pushtui running as its own process in a pseudo-terminal,
// as a person runs it.
type terminal struct {
	cmd  *exec.Cmd
	pty  *os.File
	out  *syncBuffer
	read sync.WaitGroup

	exited chan struct{}
	err    error // set when exited is closed
}

// startTerminal runs the test binary as pushtui with args in a w×h pty.
func startTerminal(t *testing.T, w, h int, environ []string, args ...string) *terminal {
	t.Helper()
	cmd := pushdtest.ProgramCommand(context.Background(), args...)
	// CI in the environment makes the colour library assume no terminal.
	cmd.Env = append(cmd.Env, "TERM=xterm-256color", "NO_COLOR=", "CI=", "PUSH_SERVER=", "PUSH_TOKEN=", "XDG_STATE_HOME="+t.TempDir())
	cmd.Env = append(cmd.Env, environ...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(w), Rows: uint16(h)})
	if err != nil {
		t.Fatalf("start in a pty: %v", err)
	}
	term := &terminal{cmd: cmd, pty: f, out: newSyncBuffer(), exited: make(chan struct{})}
	term.read.Add(1)
	go term.readLoop()
	go func() {
		term.err = cmd.Wait()
		close(term.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-term.exited:
		default:
			_ = cmd.Process.Kill()
			<-term.exited
		}
		term.read.Wait()
		f.Close()
	})
	return term
}

// readLoop keeps what the program draws, and answers the questions a
// terminal answers: the background colour (OSC 11) and the cursor
// position (CSI 6n), which lipgloss asks before drawing in colour.
func (term *terminal) readLoop() {
	defer term.read.Done()
	buf := make([]byte, 32<<10)
	var pending []byte
	for {
		n, err := term.pty.Read(buf)
		if n > 0 {
			term.out.Write(buf[:n])
			pending = append(pending, buf[:n]...)
			if i := bytes.Index(pending, []byte("\x1b]11;?")); i >= 0 {
				term.pty.WriteString("\x1b]11;rgb:1c1c/1c1c/1c1c\x1b\\")
				pending = pending[i+1:]
			}
			if i := bytes.Index(pending, []byte("\x1b[6n")); i >= 0 {
				term.pty.WriteString("\x1b[1;1R")
				pending = pending[i+1:]
			}
			if len(pending) > 64 {
				pending = pending[len(pending)-64:]
			}
		}
		if err != nil {
			return // EIO once the program has exited
		}
	}
}

// screenSince returns what was drawn after the first `from` bytes, escape
// codes removed.
func (term *terminal) screenSince(from int) string {
	s := term.out.String()
	if from > len(s) {
		from = len(s)
	}
	return ansi.Strip(s[from:])
}

// waitScreen waits until what was drawn after from holds every one of
// wants.
func (term *terminal) waitScreen(t *testing.T, from int, wants ...string) {
	t.Helper()
	term.out.waitFor(t, strings.Join(wants, " and "), func(string) bool {
		got := term.screenSince(from)
		for _, w := range wants {
			if !strings.Contains(got, w) {
				return false
			}
		}
		return true
	})
}

// mark returns how much has been drawn so far.
func (term *terminal) mark() int { return len(term.out.String()) }

// type_ sends keys as typed.
func (term *terminal) press(t *testing.T, keys string) {
	t.Helper()
	if _, err := term.pty.WriteString(keys); err != nil {
		t.Fatalf("typing %q: %v", keys, err)
	}
}

// wait waits for the program to exit and returns its exit code.
func (term *terminal) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-term.exited:
	case <-time.After(wait):
		t.Fatalf("pushtui did not exit within %v; screen:\n%s", wait, term.screenSince(0))
	}
	var ee *exec.ExitError
	if errors.As(term.err, &ee) {
		return ee.ExitCode()
	}
	if term.err != nil {
		t.Fatalf("wait: %v", term.err)
	}
	return 0
}

// TestChatInATerminal runs the real program in a pseudo-terminal: it draws
// the chat, sends what is typed, shows what others send, redraws on a
// resize, and gives the terminal back on Esc.
func TestChatInATerminal(t *testing.T) {
	srv := startServer(t)
	term := startTerminal(t, 100, 30, []string{"USER=alice"}, "--server", srv.URL, "chat", "--room", "pty")
	term.waitScreen(t, 0, "#pty", "alice @ ", "● connected · ws", "Here (1)", "● alice (you)", "enter send")

	term.press(t, "hello from a terminal")
	term.waitScreen(t, 0, "› hello from a terminal")
	term.press(t, "\r")
	term.waitScreen(t, 0, "alice hello from a terminal")

	pushtui(t, nil, "--server", srv.URL, "--user", "bob", "send", "--room", "pty", "hi from bob")
	term.waitScreen(t, 0, "bob   hi from bob")

	// Narrower than 60 columns the side list goes and the rules span the
	// whole width.
	from := term.mark()
	if err := pty.Setsize(term.pty, &pty.Winsize{Cols: 50, Rows: 20}); err != nil {
		t.Fatal(err)
	}
	term.waitScreen(t, from, strings.Repeat("─", 50), "hi from bob")
	if strings.Contains(term.screenSince(from), "┬") {
		t.Fatalf("the side list is still drawn at 50 columns:\n%s", term.screenSince(from))
	}

	term.press(t, "\x1b") // Esc
	if code := term.wait(t); code != 0 {
		t.Fatalf("exit %d; screen:\n%s", code, term.screenSince(0))
	}
	raw := term.out.String()
	if !strings.Contains(raw, "\x1b[38;5;") {
		t.Error("not drawn in colour on a 256-colour terminal")
	}
	if !strings.Contains(raw, "\x1b[?1049l") {
		t.Fatal("the alternate screen was not left")
	}
	if !strings.Contains(raw, "\x1b[?1002l") && !strings.Contains(raw, "\x1b[?1000l") {
		t.Fatal("mouse reporting was not turned off")
	}
}

// TestFollowInATerminal: watch-progress --task in a terminal draws the
// task in place and exits 0 when it succeeds, leaving the outcome on the
// screen.
func TestFollowInATerminal(t *testing.T) {
	srv := startServer(t)
	id := startTask(t, srv, "--name", "build", "--total", "30", "--interval", "10ms")
	term := startTerminal(t, 90, 10, nil, "--server", srv.URL, "watch-progress", "--task", id)
	if code := term.wait(t); code != 0 {
		t.Fatalf("exit %d; screen:\n%s", code, term.screenSince(0))
	}
	term.waitScreen(t, 0, "build · "+id, "30/30", "✓ build succeeded after")
}

// TestNoColorInATerminal: --no-color and NO_COLOR draw the same screen
// without colours.
func TestNoColorInATerminal(t *testing.T) {
	srv := startServer(t)
	for name, setup := range map[string]struct {
		env  []string
		args []string
	}{
		"flag":     {nil, []string{"--no-color"}},
		"NO_COLOR": {[]string{"NO_COLOR=1"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"--server", srv.URL, "--user", "carol"}, setup.args...)
			term := startTerminal(t, 80, 20, setup.env, append(args, "chat")...)
			term.waitScreen(t, 0, "● connected · ws", "● carol (you)")
			term.press(t, "\x03") // Ctrl+C
			if code := term.wait(t); code != 0 {
				t.Fatalf("exit %d", code)
			}
			raw := term.out.String()
			if strings.Contains(raw, "38;") || strings.Contains(raw, "48;") {
				t.Fatal("drawn in colour")
			}
			if !strings.Contains(raw, "\x1b[7m") {
				t.Fatal("no reverse video: the cursor does not show")
			}
		})
	}
}
