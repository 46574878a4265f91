package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

func newWatch(t *testing.T, conn *fakeConn, w, h int) (*WatchModel, *clock) {
	c := &clock{now: t0}
	m := NewWatchModel(WatchConfig{Conn: conn, Common: Common{Server: "http://127.0.0.1:8080", Transport: "sse", Now: c.Now}})
	open(m, w, h)
	return m, c
}

// someTasks are one task in every state, created one second apart.
func someTasks() []protocol.Task {
	eta := 2.5
	running := task("t5", "build-42", protocol.TaskRunning, 52, 100, 4)
	running.ETASeconds = &eta
	running.Message = "step 52 of 100"
	failed := task("t2", "nightly-backup", protocol.TaskFailed, 40, 100, 1)
	failed.Message = "failed at step 41 of 100 (fail_at)"
	return []protocol.Task{
		running,
		task("t4", "queued-job", protocol.TaskQueued, 0, 10, 3),
		task("t3", "deploy", protocol.TaskCancelled, 7, 20, 2),
		failed,
		task("t1", "warm-cache", protocol.TaskSucceeded, 100, 100, 0),
	}
}

func TestWatchScreen(t *testing.T) {
	const w, h = 100, 14
	cases := []struct {
		name  string
		w, h  int
		setup func(m *WatchModel, conn *fakeConn)
	}{
		{"loading", w, h, func(m *WatchModel, conn *fakeConn) {}},
		{"empty", w, h, func(m *WatchModel, conn *fakeConn) {
			m.Update(updates(status("tasks", client.StateConnected, "sse")))
			m.Update(tasksMsg{Gen: m.gen})
		}},
		{"list", w, h, func(m *WatchModel, conn *fakeConn) {
			m.Update(updates(status("tasks", client.StateConnected, "sse")))
			m.Update(tasksMsg{Gen: m.gen, Tasks: someTasks()})
		}},
		{"selected_failed", w, h, func(m *WatchModel, conn *fakeConn) {
			m.Update(updates(status("tasks", client.StateConnected, "sse")))
			m.Update(tasksMsg{Gen: m.gen, Tasks: someTasks()})
			for range 3 {
				m.Update(keyMsg("down"))
			}
		}},
		{"full_help", w, h, func(m *WatchModel, conn *fakeConn) {
			m.Update(updates(status("tasks", client.StateConnected, "sse")))
			m.Update(tasksMsg{Gen: m.gen, Tasks: someTasks()})
			m.Update(keyMsg("?"))
		}},
		{"narrow", 60, 10, func(m *WatchModel, conn *fakeConn) {
			m.Update(updates(status("tasks", client.StateConnected, "ws")))
			m.Update(tasksMsg{Gen: m.gen, Tasks: someTasks()})
		}},
		{"list_error", w, h, func(m *WatchModel, conn *fakeConn) {
			m.Update(tasksMsg{Gen: m.gen, Err: fmt.Errorf("server said no")})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := newFakeConn()
			m, _ := newWatch(t, conn, tc.w, tc.h)
			tc.setup(m, conn)
			requireGolden(t, m.View(), tc.w, tc.h)
		})
	}
}

func TestWatchEvents(t *testing.T) {
	t.Run("progress adds and updates tasks, newest first", func(t *testing.T) {
		m, _ := newWatch(t, newFakeConn(), 100, 14)
		m.Update(tasksMsg{Gen: m.gen})
		m.Update(updates(taskEv(1, t0, task("t1", "first", protocol.TaskRunning, 1, 10, 0))))
		m.Update(updates(taskEv(2, t0, task("t2", "second", protocol.TaskRunning, 1, 10, 1))))
		m.Update(updates(taskEv(3, t0.Add(time.Second), task("t1", "first", protocol.TaskRunning, 6, 10, 0))))
		v := m.View()
		if strings.Index(v, "second") > strings.Index(v, "first") {
			t.Fatalf("not newest first:\n%s", v)
		}
		contains(t, v, "6/10", "5.0/s")
		if m.Selected() != "t1" {
			t.Fatalf("selected %q: the first task seen stays selected", m.Selected())
		}
	})
	t.Run("reset relists", func(t *testing.T) {
		m, _ := newWatch(t, newFakeConn(), 100, 14)
		gen := m.gen
		m.Update(updates(resetEv("tasks", "ep2", 0, protocol.ResetEpochChanged)))
		if m.gen != gen+1 {
			t.Fatal("no relisting after reset")
		}
		contains(t, strings.Split(m.View(), "\n")[0], "reset")
	})
	t.Run("reconnecting shows in the header", func(t *testing.T) {
		m, _ := newWatch(t, newFakeConn(), 100, 14)
		m.Update(updates(Update{Status: &Status{Stream: "tasks", State: client.StateReconnecting, Transport: "ws", Attempt: 3, RetryIn: 5 * time.Second}}))
		contains(t, m.View(), "reconnecting in 5s, try 3 · ws")
	})
	t.Run("closed", func(t *testing.T) {
		m, _ := newWatch(t, newFakeConn(), 100, 14)
		m.Update(updatesMsg{Closed: true})
		contains(t, m.View(), "✗ closed")
	})
	t.Run("duplicates are dropped", func(t *testing.T) {
		m, _ := newWatch(t, newFakeConn(), 100, 14)
		m.Update(updates(taskEv(5, t0, task("t1", "a", protocol.TaskRunning, 5, 10, 0))))
		m.Update(updates(taskEv(4, t0, task("t1", "a", protocol.TaskRunning, 4, 10, 0))))
		contains(t, m.View(), "5/10")
	})
}

func TestWatchKeys(t *testing.T) {
	setup := func(t *testing.T) (*WatchModel, *fakeConn) {
		conn := newFakeConn()
		m, _ := newWatch(t, conn, 100, 14)
		m.Update(tasksMsg{Gen: m.gen, Tasks: someTasks()})
		return m, conn
	}
	t.Run("up and down select", func(t *testing.T) {
		m, _ := setup(t)
		steps := []struct{ key, want string }{
			{"down", "t4"}, {"j", "t3"}, {"up", "t4"}, {"k", "t5"}, {"up", "t5"},
			{"end", "t1"}, {"down", "t1"}, {"home", "t5"}, {"G", "t1"}, {"g", "t5"},
			{"pgdown", "t1"}, {"pgup", "t5"},
		}
		for _, s := range steps {
			m.Update(keyMsg(s.key))
			if m.Selected() != s.want {
				t.Fatalf("after %s: selected %s, want %s", s.key, m.Selected(), s.want)
			}
		}
	})
	t.Run("c cancels the selected task once y confirms", func(t *testing.T) {
		m, conn := setup(t)
		if _, cmd := m.Update(keyMsg("c")); cmd != nil {
			t.Fatal("c cancelled before asking")
		}
		contains(t, m.View(), "cancel build-42 (t5)? y/n")
		_, cmd := m.Update(keyMsg("y"))
		contains(t, m.View(), "cancelling build-42…")
		m.Update(cmd())
		if len(conn.cancelled) != 1 || conn.cancelled[0] != "t5" {
			t.Fatalf("cancelled %v", conn.cancelled)
		}
	})
	t.Run("c then anything but y does not cancel", func(t *testing.T) {
		for _, answer := range []string{"n", "esc", "q"} {
			m, conn := setup(t)
			m.Update(keyMsg("c"))
			if _, cmd := m.Update(keyMsg(answer)); cmd != nil || len(conn.cancelled) != 0 {
				t.Fatalf("%s: cancelled", answer)
			}
			contains(t, m.View(), "not cancelled")
			if m.quitting {
				t.Fatalf("%s quit instead of answering", answer)
			}
		}
	})
	t.Run("a task that ends says how, after its row moves down", func(t *testing.T) {
		m, _ := setup(t)
		done := protocol.Task{ID: "t5", Name: "build-42", State: protocol.TaskFailed, Message: "disk full", Total: 100, Done: 40}
		m.Update(updatesMsg{Updates: []Update{{Event: &protocol.Event{Stream: protocol.TasksStream, Type: protocol.TypeProgress, Epoch: "e", Seq: 99, Task: &done}}}})
		contains(t, m.View(), "build-42 failed: disk full")
	})
	t.Run("c on a finished task says so", func(t *testing.T) {
		m, conn := setup(t)
		m.Update(keyMsg("end"))
		_, cmd := m.Update(keyMsg("c"))
		if cmd != nil || len(conn.cancelled) != 0 {
			t.Fatal("cancelled a finished task")
		}
		contains(t, m.View(), "warm-cache already succeeded")
	})
	t.Run("c with no tasks", func(t *testing.T) {
		m, _ := newWatch(t, newFakeConn(), 100, 14)
		if _, cmd := m.Update(keyMsg("c")); cmd != nil {
			t.Fatal("cancel with nothing selected")
		}
		contains(t, m.View(), "no task selected")
	})
	t.Run("a failed cancel shows the error", func(t *testing.T) {
		m, _ := setup(t)
		m.Update(actionMsg{what: "cancel t5", err: errBoom})
		contains(t, m.View(), "✗ cancel t5: boom")
	})
	t.Run("n starts a demo task and selects it", func(t *testing.T) {
		m, conn := setup(t)
		_, cmd := m.Update(keyMsg("n"))
		m.Update(cmd())
		if len(conn.started) != 1 {
			t.Fatal("no task started")
		}
		if m.Selected() != "t9" {
			t.Fatalf("selected %s", m.Selected())
		}
		contains(t, m.View(), "started demo-9 (t9)", "demo-9")
	})
	t.Run("? toggles the full help", func(t *testing.T) {
		m, _ := setup(t)
		m.Update(keyMsg("?"))
		contains(t, m.View(), "page up")
		m.Update(keyMsg("?"))
		lacks(t, m.View(), "page up")
	})
	for _, k := range []string{"q", "esc", "ctrl+c"} {
		t.Run(k+" quits", func(t *testing.T) {
			m, _ := setup(t)
			_, cmd := m.Update(keyMsg(k))
			if !isQuit(cmd) {
				t.Fatal("did not quit")
			}
		})
	}
	t.Run("text in one chunk is no key press", func(t *testing.T) {
		m, conn := setup(t)
		m.Update(keyMsg("j"))
		for _, text := range []string{"scroll down and press esc", "go up", "end", "quit now", "cancel", "new"} {
			for _, cmd := range typeChunks(m, text) {
				if cmd != nil {
					t.Fatalf("%q gave a command", text)
				}
			}
			m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(text), Paste: true})
			if m.Selected() != "t4" {
				t.Fatalf("%q moved the selection to %s", text, m.Selected())
			}
		}
		if len(conn.started)+len(conn.cancelled) != 0 {
			t.Fatal("text started or cancelled a task")
		}
		// Single keys still work.
		m.Update(keyMsg("k"))
		if m.Selected() != "t5" {
			t.Fatalf("k selected %s", m.Selected())
		}
	})
	t.Run("the help names every key", func(t *testing.T) {
		m, _ := setup(t)
		short := m.View()
		contains(t, short, "↑/↓ select")
		m.Update(keyMsg("?"))
		full := m.View()
		contains(t, full, "↑/k  up", "↓/j  down", "g/home newest", "G/end  oldest")
		lacks(t, full, "select")
	})
	t.Run("the selection stays in view", func(t *testing.T) {
		conn := newFakeConn()
		m, _ := newWatch(t, conn, 100, 10) // 5 rows
		var ts []protocol.Task
		for i := range 20 {
			ts = append(ts, task(fmt.Sprintf("t%02d", 20-i), fmt.Sprintf("job-%02d", 20-i), protocol.TaskSucceeded, 1, 1, 20-i))
		}
		m.Update(tasksMsg{Gen: m.gen, Tasks: ts})
		for range 12 {
			m.Update(keyMsg("down"))
		}
		v := m.View()
		contains(t, v, "› job-08")
		lacks(t, v, "job-20")
	})
}

func TestFollow(t *testing.T) {
	newFollow := func(t *testing.T, conn *fakeConn) *FollowModel {
		c := &clock{now: t0}
		m := NewFollowModel(FollowConfig{Conn: followConn{conn}, TaskID: "t5", Common: Common{Server: "s", Transport: "ws", Now: c.Now}})
		open(m, 80, 24)
		return m
	}
	running := task("t5", "build-42", protocol.TaskRunning, 52, 100, 0)
	running.Message = "step 52 of 100"
	t.Run("screens", func(t *testing.T) {
		conn := newFakeConn()
		conn.task = running
		m := newFollow(t, conn)
		t.Run("looking_up", func(t *testing.T) { requireGolden(t, m.View(), 80, 0) })
		m.Update(updates(status("tasks", client.StateConnected, "ws")))
		m.Update(taskMsg{task: running})
		t.Run("running", func(t *testing.T) { requireGolden(t, m.View(), 80, 0) })
		done := task("t5", "build-42", protocol.TaskSucceeded, 100, 100, 0)
		done.Message = "step 100 of 100"
		_, cmd := m.Update(updates(taskEv(9, t0.Add(5*time.Second), done)))
		if !isQuit(cmd) {
			t.Fatal("did not quit when the task ended")
		}
		t.Run("succeeded", func(t *testing.T) { requireGolden(t, m.View(), 80, 0) })
	})
	for _, st := range []protocol.TaskState{protocol.TaskSucceeded, protocol.TaskFailed, protocol.TaskCancelled} {
		t.Run("ends "+string(st), func(t *testing.T) {
			conn := newFakeConn()
			m := newFollow(t, conn)
			m.Update(taskMsg{task: running})
			_, cmd := m.Update(updates(taskEv(9, t0.Add(time.Second), task("t5", "build-42", st, 60, 100, 0))))
			if !isQuit(cmd) {
				t.Fatal("did not quit")
			}
			got, err := m.Result()
			if err != nil || got.State != st {
				t.Fatalf("Result = %v, %v", got.State, err)
			}
			contains(t, m.View(), "build-42 "+string(st))
		})
	}
	t.Run("already finished", func(t *testing.T) {
		conn := newFakeConn()
		m := newFollow(t, conn)
		_, cmd := m.Update(taskMsg{task: task("t5", "build-42", protocol.TaskFailed, 3, 10, 0)})
		if !isQuit(cmd) {
			t.Fatal("did not quit")
		}
		if got, err := m.Result(); err != nil || got.State != protocol.TaskFailed {
			t.Fatalf("Result = %v, %v", got.State, err)
		}
	})
	t.Run("events of other tasks are ignored", func(t *testing.T) {
		m := newFollow(t, newFakeConn())
		m.Update(taskMsg{task: running})
		m.Update(updates(taskEv(9, t0, task("t6", "other", protocol.TaskSucceeded, 1, 1, 0))))
		if m.done {
			t.Fatal("quit on another task's end")
		}
	})
	t.Run("a stale fetch does not go back", func(t *testing.T) {
		m := newFollow(t, newFakeConn())
		m.Update(updates(taskEv(9, t0.Add(time.Second), task("t5", "build-42", protocol.TaskRunning, 80, 100, 0))))
		m.Update(taskMsg{task: running})
		contains(t, m.View(), "80/100")
	})
	t.Run("fetch error", func(t *testing.T) {
		m := newFollow(t, newFakeConn())
		_, cmd := m.Update(taskMsg{err: errBoom})
		wantEnd(t, m, cmd, errBoom)
	})
	t.Run("q stops watching", func(t *testing.T) {
		m := newFollow(t, newFakeConn())
		m.Update(taskMsg{task: running})
		_, cmd := m.Update(keyMsg("q"))
		wantEnd(t, m, cmd, ErrStopped)
	})
	t.Run("text in one chunk does not stop or cancel", func(t *testing.T) {
		conn := newFakeConn()
		m := newFollow(t, conn)
		m.Update(taskMsg{task: running})
		for _, cmd := range typeChunks(m, "press esc to cancel") {
			if cmd != nil {
				t.Fatal("text gave a command")
			}
		}
		if m.quitting || m.note != "" {
			t.Fatalf("stopped %v, note %q", m.quitting, m.note)
		}
		if _, cmd := m.Update(keyMsg("esc")); !isQuit(cmd) {
			t.Fatal("esc did not stop watching")
		}
	})
	t.Run("closed before the end", func(t *testing.T) {
		m := newFollow(t, newFakeConn())
		m.Update(taskMsg{task: running})
		_, cmd := m.Update(updatesMsg{Closed: true})
		wantEnd(t, m, cmd, ErrClosed)
	})
	t.Run("closed before the task's answer", func(t *testing.T) {
		// The stream of a task that had ended ends at once; the answer
		// about the task says how it ended.
		m := newFollow(t, newFakeConn())
		if _, cmd := m.Update(updatesMsg{Closed: true}); isQuit(cmd) {
			t.Fatal("quit before the task's answer")
		}
		_, cmd := m.Update(taskMsg{task: task("t5", "build-42", protocol.TaskSucceeded, 10, 10, 0)})
		if !isQuit(cmd) {
			t.Fatal("did not quit")
		}
		if got, err := m.Result(); err != nil || got.State != protocol.TaskSucceeded {
			t.Fatalf("Result = %v, %v", got.State, err)
		}
		m = newFollow(t, newFakeConn())
		m.Update(updatesMsg{Closed: true})
		if _, cmd := m.Update(taskMsg{task: running}); !isQuit(cmd) {
			t.Fatal("did not quit")
		}
		if _, err := m.Result(); err != ErrClosed {
			t.Fatalf("Result err = %v", err)
		}
	})
	t.Run("c cancels once y confirms", func(t *testing.T) {
		conn := newFakeConn()
		conn.task = running
		m := newFollow(t, conn)
		m.Update(taskMsg{task: running})
		m.Update(keyMsg("c"))
		_, cmd := m.Update(keyMsg("y"))
		contains(t, m.View(), "cancelling…")
		m.Update(cmd())
		if len(conn.cancelled) != 1 || conn.cancelled[0] != "t5" {
			t.Fatalf("cancelled %v", conn.cancelled)
		}
		m.Update(cancelledMsg{err: errBoom})
		contains(t, m.View(), "cancel: boom")
	})
}

// TestTinyScreens: no screen panics or overflows however small the
// terminal gets.
func TestTinyScreens(t *testing.T) {
	sizes := [][2]int{{1, 1}, {5, 2}, {12, 4}, {20, 6}, {30, 3}, {59, 9}}
	for _, sz := range sizes {
		w, h := sz[0], sz[1]
		chat, _ := newChat(t, newFakeConn(), w, h)
		connect(chat)
		chat.Update(updates(roomEv(1, protocol.TypeMessage, "someone-with-a-long-name", "a fairly long message that wraps"),
			taskEv(1, t0, task("t1", "build", protocol.TaskRunning, 5, 10, 0))))
		watch, _ := newWatch(t, newFakeConn(), w, h)
		watch.Update(tasksMsg{Gen: watch.gen, Tasks: someTasks()})
		for name, v := range map[string]string{"chat": chat.View(), "watch": watch.View()} {
			for i, l := range strings.Split(v, "\n") {
				if lw := lipgloss.Width(l); lw > w {
					t.Errorf("%s at %dx%d: line %d is %d wide: %q", name, w, h, i, lw, l)
				}
			}
		}
	}
}

// wantEnd checks that cmd quits a follow screen whose result is the
// error want.
func wantEnd(t *testing.T, m *FollowModel, cmd tea.Cmd, want error) {
	t.Helper()
	if !isQuit(cmd) {
		t.Fatal("did not quit")
	}
	if _, err := m.Result(); err != want {
		t.Fatalf("Result err = %v, want %v", err, want)
	}
}
