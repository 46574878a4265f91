package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// fmtDuration writes a duration the way people read it: "0.4s", "7s",
// "1m05s", "2h03m".
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

// fmtRate writes units per second: "19.8/s", "1.2k/s"; "-" when unknown.
func fmtRate(r float64) string {
	switch {
	case r <= 0 || math.IsNaN(r) || math.IsInf(r, 0):
		return "-"
	case r < 10:
		return fmt.Sprintf("%.1f/s", r)
	case r < 1000:
		return fmt.Sprintf("%.0f/s", r)
	case r < 1e6:
		return fmt.Sprintf("%.1fk/s", r/1e3)
	default:
		return fmt.Sprintf("%.1fM/s", r/1e6)
	}
}

// fmtCount writes done/total, or just done when the total is unknown.
func fmtCount(done, total int64) string {
	if total <= 0 {
		return fmt.Sprint(done)
	}
	return fmt.Sprintf("%d/%d", done, total)
}

// fmtPercent writes a fraction as a whole percentage: "  7%", "100%".
func fmtPercent(f float64) string {
	return fmt.Sprintf("%3.0f%%", math.Floor(clamp01(f)*100))
}

// Pad fits s to exactly w cells: cut with "…" or filled with spaces.
func Pad(s string, w int) string {
	s, fill := cutToWidth(s, w)
	return s + fill
}

// PadLeft fits s to exactly w cells, aligned right.
func PadLeft(s string, w int) string {
	s, fill := cutToWidth(s, w)
	return fill + s
}

// cutToWidth cuts s to at most w cells with "…", and returns the spaces that
// fill it to w.
func cutToWidth(s string, w int) (string, string) {
	if w <= 0 {
		return "", ""
	}
	if n := lipgloss.Width(s); n <= w {
		return s, strings.Repeat(" ", w-n)
	}
	return ansi.Truncate(s, w, "…"), ""
}

// FitLines makes lines exactly h lines of exactly w cells: cut, or filled
// with blank lines and spaces.
func FitLines(lines []string, w, h int) []string {
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	for i, l := range lines {
		lines[i] = Pad(l, w)
	}
	return lines
}
