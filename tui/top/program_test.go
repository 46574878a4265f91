package top

import (
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/pushd/push/internal/screentest"
	"github.com/pushd/push/tui"
)

// The screen as a Bubble Tea program: stats from the channel show, enter
// asks for a stream's subscribers, q quits.
func TestProgram(t *testing.T) {
	conn := newFakeConn()
	conn.subs["room/lobby"] = sampleSubscribers()
	m := New(Config{Common: tui.Common{Server: "http://127.0.0.1:8080"}, Conn: conn, Location: time.UTC})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	conn.ch <- connected("ws")
	conn.ch <- statsEvent(sampleStats())
	screentest.WaitFor(t, tm, "conns 201", "nightly-backup", "● live · ws")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	screentest.WaitFor(t, tm, "lobby · 2 subscribers", "10.1.2.3:40000")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	tm.WaitFinished(t, teatest.WithFinalTimeout(screentest.Timeout))
	close(conn.ch)
}
