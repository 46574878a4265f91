package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/pushd/push/client"
)

// resetShownFor is how long the header says "reset" after a reset event.
const resetShownFor = 10 * time.Second

// connInfo is what a header knows about one subscription's connection.
type connInfo struct {
	Status
	since   time.Time // when Status arrived: RetryIn counts down from here
	resetAt time.Time // when the last reset event arrived (zero: none)
	reason  string    // its reason
}

// set records a new status at now.
func (c *connInfo) set(s Status, now time.Time) {
	c.Status = s
	c.since = now
}

// busy reports whether the state animates (a spinner, a countdown).
func (c *connInfo) busy() bool {
	return c.State == client.StateConnecting || c.State == client.StateReconnecting
}

// noteReset records that a reset event arrived at now; the header says
// "reset" for resetShownFor after it.
func (c *connInfo) noteReset(reason string, now time.Time) {
	c.resetAt, c.reason = now, reason
}

// view renders the state: "● connected · ws", "⠋ reconnecting in 3s, try 2",
// with "· reset" while a reset is recent.
func (c *connInfo) view(st *Styles, now time.Time, spin string) string {
	var b strings.Builder
	switch c.State {
	case client.StateConnecting:
		b.WriteString(st.Warn.Render(spin + " connecting"))
		if c.Transport != "" {
			b.WriteString(st.Dim.Render(" · " + c.Transport))
		}
	case client.StateConnected:
		b.WriteString(st.Good.Render("● connected"))
		if c.Transport != "" {
			b.WriteString(st.Dim.Render(" · ") + st.Header.Render(c.Transport))
		}
	case client.StateReconnecting:
		left := c.RetryIn - now.Sub(c.since)
		secs := int(math.Ceil(left.Seconds()))
		text := spin + " reconnecting"
		if secs > 0 {
			text += fmt.Sprintf(" in %ds", secs)
		} else {
			text += " now"
		}
		if c.Attempt > 0 {
			text += fmt.Sprintf(", try %d", c.Attempt)
		}
		b.WriteString(st.Warn.Render(text))
		if c.Transport != "" {
			b.WriteString(st.Dim.Render(" · " + c.Transport))
		}
	case client.StateClosed:
		b.WriteString(st.Bad.Render("✗ closed"))
	}
	if !c.resetAt.IsZero() && now.Sub(c.resetAt) < resetShownFor {
		b.WriteString(st.Dim.Render(" · ") + st.Warn.Render("reset"))
	}
	return b.String()
}

// headerLine lays out a header: left text, then right text flush with the
// right edge, truncating the left part when they do not both fit.
func headerLine(width int, left, right string) string {
	if width <= 0 {
		return ""
	}
	rw := lipgloss.Width(right)
	if rw >= width {
		return ansi.Truncate(right, width, "…")
	}
	room := width - rw - 1
	if lipgloss.Width(left) > room {
		left = ansi.Truncate(left, room, "…")
	}
	gap := width - lipgloss.Width(left) - rw
	return left + strings.Repeat(" ", gap) + right
}
