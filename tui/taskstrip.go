package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/progress"

	"github.com/pushd/push/protocol"
)

// bars draws static progress bars with the bubbles progress component, in
// the colour of each task's state.
type bars struct {
	st *Styles
	m  progress.Model
}

func newBars(st *Styles) bars {
	m := progress.New(
		progress.WithoutPercentage(),
		progress.WithFillCharacters('█', '░'),
		progress.WithColorProfile(st.profile()),
	)
	m.EmptyColor = string(st.BarEmpty)
	return bars{st: st, m: m}
}

// view draws a bar w cells wide, filled to frac.
func (b bars) view(frac float64, w int, state protocol.TaskState) string {
	m := b.m
	m.Width = max(w, 1)
	m.FullColor = b.st.stateBar(state)
	return m.ViewAs(clamp01(frac))
}

// maxStripRows is how many tasks the chat screen's strip shows at once.
const maxStripRows = 3

// taskStrip is the chat screen's strip of live tasks, each with a progress
// bar. It is empty (zero height) when no task is queued or running.
type taskStrip struct {
	st    *Styles
	bars  bars
	width int
}

// newTaskStrip returns an empty strip.
func newTaskStrip(st *Styles) taskStrip {
	return taskStrip{st: st, bars: newBars(st)}
}

// SetSize sets the strip's width; its height follows the tasks.
func (s *taskStrip) SetSize(w, _ int) { s.width = w }

// Height returns how many lines View will draw for these tasks.
func (s *taskStrip) Height(live []*TaskView) int {
	return min(len(live), maxStripRows)
}

// View draws one line per live task, newest first: spinner, name, bar,
// percent, done/total, rate and ETA; "+N more" on the last line when they
// do not all fit.
func (s taskStrip) View(live []*TaskView, spin string) string {
	if len(live) == 0 || s.width <= 0 {
		return ""
	}
	st := s.st
	rows := min(len(live), maxStripRows)
	lines := make([]string, 0, rows)
	for i, t := range live[:rows] {
		more := ""
		if i == rows-1 && len(live) > rows {
			more = fmt.Sprintf(" +%d more", len(live)-rows)
		}
		icon := spin
		if t.State == protocol.TaskQueued {
			icon = "…"
		}
		nameW := min(20, max(8, s.width/5))
		tail := " " + fmtPercent(t.Fraction()) + "  " + padLeft(fmtCount(t.Done, t.Total), 9) + "  " + padLeft(fmtRate(t.Rate()), 7)
		if eta, ok := t.ETA(); ok {
			tail += "  " + padLeft("eta "+fmtDuration(eta), 10)
		} else {
			tail += "  " + strings.Repeat(" ", 10)
		}
		tail += more
		barW := s.width - 2 - nameW - 1 - len([]rune(tail))
		var line string
		if barW < 6 {
			line = st.Accent.Render(icon) + " " + pad(clean(t.Name, false), nameW) + st.Dim.Render(tail)
		} else {
			line = st.Accent.Render(icon) + " " + pad(clean(t.Name, false), nameW) + " " +
				s.bars.view(t.Fraction(), barW, t.State) + st.Dim.Render(tail)
		}
		lines = append(lines, pad(line, s.width))
	}
	return strings.Join(lines, "\n")
}
