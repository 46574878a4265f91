package tui

import (
	"fmt"
	"strings"
	"time"

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
	// stale is when the connection dropped (zero while it is up): the
	// rows are then as they were at that time, drawn dimmed.
	stale time.Time
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
// do not all fit. While stale, the rows are dimmed, without spinner, rate
// or ETA, and the first says "as of" when, in loc.
func (s taskStrip) View(live []*TaskView, spin string, loc *time.Location) string {
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
		tail := " " + fmtPercent(t.Fraction()) + "  " + PadLeft(fmtCount(t.Done, t.Total), 9) + "  "
		switch eta, ok := t.ETA(); {
		case !s.stale.IsZero():
			icon = "·"
			asOf := ""
			if i == 0 {
				asOf = "as of " + s.stale.In(loc).Format("15:04:05")
			}
			tail += PadLeft(asOf, 19)
		case ok:
			tail += PadLeft(fmtRate(t.Rate()), 7) + "  " + PadLeft("eta "+fmtDuration(eta), 10)
		default:
			tail += PadLeft(fmtRate(t.Rate()), 7) + "  " + strings.Repeat(" ", 10)
		}
		tail += more
		barW := s.width - 2 - nameW - 1 - len([]rune(tail))
		var line string
		switch {
		case !s.stale.IsZero():
			bar := ""
			if barW >= 6 {
				full := int(clamp01(t.Fraction()) * float64(barW))
				bar = " " + strings.Repeat("█", full) + strings.Repeat("░", barW-full)
			}
			line = st.Dim.Render(icon + " " + Pad(clean(t.Name, false), nameW) + bar + tail)
		case barW < 6:
			line = st.Accent.Render(icon) + " " + Pad(clean(t.Name, false), nameW) + st.Dim.Render(tail)
		default:
			line = st.Accent.Render(icon) + " " + Pad(clean(t.Name, false), nameW) + " " +
				s.bars.view(t.Fraction(), barW, t.State) + st.Dim.Render(tail)
		}
		lines = append(lines, Pad(line, s.width))
	}
	return strings.Join(lines, "\n")
}
