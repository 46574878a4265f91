package tui

import (
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/protocol"
)

// TestChatStripShowsTheRoomsTasks: the strip of room lobby shows the
// tasks scoped to lobby, and those shown to everyone unless
// RoomTasksOnly; never another room's or a private one.
func TestChatStripShowsTheRoomsTasks(t *testing.T) {
	scoped := func(id, name, room string, private bool) protocol.Task {
		tk := task(id, name, protocol.TaskRunning, 1, 10, 0)
		tk.Room, tk.Private = room, private
		return tk
	}
	tasks := []protocol.Task{
		scoped("t1", "lobby-job", "lobby", false),
		scoped("t2", "ops-job", "ops", false),
		scoped("t3", "mine", "", true),
		scoped("t4", "for-all", "", false),
	}
	for _, only := range []bool{false, true} {
		c := &clock{now: t0}
		m := NewChatModel(ChatConfig{Common: Common{Server: "http://127.0.0.1:8080", Transport: "auto", Now: c.Now},
			Conn: newFakeConn(), Room: "lobby", User: "alice", Location: time.UTC, RoomTasksOnly: only})
		m.Init()
		m.Update(tea.WindowSizeMsg{Width: 100, Height: 20})
		connect(m)
		// From the listing, and from events.
		m.Update(tasksMsg{Gen: m.taskGen, Tasks: tasks[:2]})
		for i, tk := range tasks[2:] {
			m.Update(updates(taskEv(uint64(i+1), t0.Add(time.Second), tk)))
		}
		v := m.View()
		contains(t, v, "lobby-job")
		lacks(t, v, "ops-job", "mine")
		if only {
			lacks(t, v, "for-all")
		} else {
			contains(t, v, "for-all")
		}
	}
}
