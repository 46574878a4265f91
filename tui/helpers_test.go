package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// t0 is the fixed "now" of every test.
var t0 = time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// fakeConn implements ChatConn, TaskConn and FollowConn with values.
type fakeConn struct {
	ch chan Update

	mu        sync.Mutex
	sent      []string
	sendErr   error
	ids       []string // the id of every send, failed ones too
	users     []string
	presences int
	tasks     []protocol.Task
	listings  int
	started   []protocol.Task
	cancelled []string
	task      protocol.Task
	taskErr   error
	reads     []protocol.Cursor // every ReadBefore's cursor
	// older answers ReadBefore (nil: no events, nothing before).
	older func(before protocol.Cursor, limit int) (*protocol.Page, error)
}

func newFakeConn() *fakeConn { return &fakeConn{ch: make(chan Update, 1024)} }

func (f *fakeConn) Updates() <-chan Update { return f.ch }

func (f *fakeConn) Send(_ context.Context, id, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, id)
	if f.sendErr != nil {
		return f.sendErr
	}
	f.sent = append(f.sent, text)
	return nil
}

func (f *fakeConn) Presence(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.presences++
	return append([]string(nil), f.users...), nil
}

func (f *fakeConn) ReadBefore(_ context.Context, before protocol.Cursor, limit int) (*protocol.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, before)
	if f.older == nil {
		return &protocol.Page{Events: []protocol.Event{}}, nil
	}
	return f.older(before, limit)
}

func (f *fakeConn) Tasks(context.Context) ([]protocol.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listings++
	return append([]protocol.Task(nil), f.tasks...), nil
}

func (f *fakeConn) StartDemo(context.Context) (protocol.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := protocol.Task{ID: "t9", Kind: "demo", Name: "demo-9", State: protocol.TaskQueued, Total: 100, Created: t0.Add(time.Hour)}
	f.started = append(f.started, t)
	return t, nil
}

func (f *fakeConn) Cancel(_ context.Context, id string) (protocol.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, id)
	return protocol.Task{ID: id, State: protocol.TaskRunning}, nil
}

func (f *fakeConn) Task(context.Context) (protocol.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.task, f.taskErr
}

// followConn adapts fakeConn to FollowConn (whose Cancel takes no id).
type followConn struct{ *fakeConn }

func (f followConn) Cancel(ctx context.Context) (protocol.Task, error) {
	return f.fakeConn.Cancel(ctx, f.task.ID)
}

// calls reads a counter under the lock.
func (f *fakeConn) calls(read func() int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return read()
}

var errBoom = errors.New("boom")

// Errors as the client returns them: a long poll to a server that is not
// running, and a WebSocket that the server dropped.
var (
	errRefused = &url.Error{Op: "Get", URL: "http://127.0.0.1:8080/v1/rooms/lobby/events?since=ep1:5&user=alice&wait=25s",
		Err: &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
			Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	errDropped = fmt.Errorf("failed to get reader: %w", fmt.Errorf("failed to read frame header: %w", io.EOF))
)

// Event builders.

func roomEv(seq uint64, typ protocol.Type, user, text string) Update {
	return Update{Event: &protocol.Event{Seq: seq, Epoch: "ep1", Stream: "room/lobby", Type: typ,
		Time: t0.Add(time.Duration(seq) * time.Second), User: user, Text: text}}
}

// messages returns n messages of bob, seqs 1 to n, with the texts
// "prefix 1" to "prefix n".
func messages(n int, prefix string) []Update {
	us := make([]Update, n)
	for i := range us {
		seq := uint64(i + 1)
		us[i] = roomEv(seq, protocol.TypeMessage, "bob", fmt.Sprintf("%s %d", prefix, seq))
	}
	return us
}

func resetEv(stream, epoch string, seq uint64, reason string) Update {
	return Update{Event: &protocol.Event{Seq: seq, Epoch: epoch, Stream: stream, Type: protocol.TypeReset, Time: t0, Reason: reason}}
}

func status(stream string, st client.ConnState, transport string) Update {
	return Update{Status: &Status{Stream: stream, State: st, Transport: transport}}
}

func taskEv(seq uint64, at time.Time, t protocol.Task) Update {
	return Update{Event: &protocol.Event{Seq: seq, Epoch: "ep1", Stream: protocol.TasksStream, Type: protocol.TypeProgress, Time: at, Task: &t}}
}

// task returns a task created at t0+created seconds, started then.
func task(id, name string, state protocol.TaskState, done, total int64, created int) protocol.Task {
	c := t0.Add(time.Duration(created) * time.Second)
	t := protocol.Task{ID: id, Kind: "demo", Name: name, State: state, Done: done, Total: total, Created: c}
	if state != protocol.TaskQueued {
		t.Started = &c
	}
	if total > 0 {
		t.Percent = float64(done) * 100 / float64(total)
	}
	if state.Final() {
		f := c.Add(5 * time.Second)
		t.Finished = &f
	}
	return t
}

func updates(us ...Update) updatesMsg { return updatesMsg{Updates: us} }

// Keys.

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "pgup":
		return tea.KeyMsg{Type: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyMsg{Type: tea.KeyPgDown}
	case "home":
		return tea.KeyMsg{Type: tea.KeyHome}
	case "end":
		return tea.KeyMsg{Type: tea.KeyEnd}
	case "ctrl+home":
		return tea.KeyMsg{Type: tea.KeyCtrlHome}
	case "ctrl+end":
		return tea.KeyMsg{Type: tea.KeyCtrlEnd}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// open starts m and gives it a w×h window, as a program does; the
// commands Init returns are not run.
func open(m tea.Model, w, h int) {
	m.Init()
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
}

// send presses enter on m and hands it what the command it returns
// answers: the line is sent and the answer taken in.
func send(m tea.Model) {
	_, cmd := m.Update(keyMsg("enter"))
	m.Update(cmd())
}

// typeText sends each rune of s as a key press.
func typeText(m tea.Model, s string) {
	for _, r := range s {
		m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

// chunks returns the key messages a terminal's input becomes when s
// arrives in one read (typed faster than read, or pasted without bracketed
// paste): Bubble Tea reads each run of runes up to a space as one message,
// and each space as a key of its own.
func chunks(s string) []tea.KeyMsg {
	var ks []tea.KeyMsg
	for i, word := range strings.Split(s, " ") {
		if i > 0 {
			ks = append(ks, tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
		}
		if word != "" {
			ks = append(ks, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(word)})
		}
	}
	return ks
}

// typeChunks sends s to m as chunks does, and returns the commands.
func typeChunks(m tea.Model, s string) []tea.Cmd {
	var cmds []tea.Cmd
	for _, k := range chunks(s) {
		_, cmd := m.Update(k)
		cmds = append(cmds, cmd)
	}
	return cmds
}

// isQuit reports whether cmd is tea.Quit.
func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

// requireGolden checks a full-screen view: exactly h lines of exactly w
// cells, then its text against testdata/<test>.golden (-update rewrites
// it). Trailing spaces are trimmed in the file, so it reads well.
func requireGolden(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if h > 0 && len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if got := lipgloss.Width(l); got > w || (h > 0 && got != w) {
			t.Errorf("line %d is %d cells wide, want %d: %q", i, got, w, l)
		}
		if strings.Contains(l, "\x1b") {
			t.Errorf("line %d has escape codes: %q", i, l)
		}
		lines[i] = strings.TrimRight(l, " ")
	}
	golden.RequireEqual(t, []byte(strings.Join(lines, "\n")+"\n"))
}

// contains fails unless view has every one of wants.
func contains(t *testing.T, view string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(view, w) {
			t.Errorf("view lacks %q:\n%s", w, view)
		}
	}
}

// lacks fails if view has any of bad.
func lacks(t *testing.T, view string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(view, b) {
			t.Errorf("view has %q:\n%s", b, view)
		}
	}
}
