package top

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/charmbracelet/x/ansi"
)

// rate writes a figure per second in at most five cells: "0", "0.5",
// "12.3", "123", "1.2k", "12k", "1.2M".
func rate(r float64) string {
	switch {
	case r <= 0 || math.IsNaN(r) || math.IsInf(r, 0):
		return "0"
	case r < 100:
		return trimZero(fmt.Sprintf("%.1f", r))
	case r < 1000:
		return fmt.Sprintf("%.0f", r)
	case r < 10e3:
		return trimZero(fmt.Sprintf("%.1f", r/1e3)) + "k"
	case r < 1e6:
		return fmt.Sprintf("%.0fk", r/1e3)
	case r < 10e6:
		return trimZero(fmt.Sprintf("%.1f", r/1e6)) + "M"
	default:
		return fmt.Sprintf("%.0fM", r/1e6)
	}
}

// trimZero drops a ".0" at the end of s.
func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// count writes n with a comma every three digits: "1,234,567".
func count[T int | uint64](n T) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// size writes a number of bytes: "812 B", "54 MiB", "1.2 GiB".
func size(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	suffix := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
	if v < 10 {
		return trimZero(fmt.Sprintf("%.1f", v)) + " " + suffix
	}
	return fmt.Sprintf("%.0f %s", v, suffix)
}

// millis writes milliseconds: "8 µs", "0.21 ms", "12 ms", "1.3 s".
func millis(ms float64) string {
	switch {
	case ms <= 0:
		return "0 ms"
	case ms < 0.1:
		return fmt.Sprintf("%.0f µs", ms*1000)
	case ms < 1:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return trimZero(fmt.Sprintf("%.1f", ms)) + " ms"
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return trimZero(fmt.Sprintf("%.1f", ms/1000)) + " s"
	}
}

// age writes a span of time in at most six cells: "45s", "2m13s",
// "1h02m", "3d04h".
func age(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// sparkBlocks are a sparkline's levels, lowest first.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width of points, newest at the right, scaled
// to the largest of them; it is width cells, blank where there are no
// points yet.
func sparkline(points []float64, width int) string {
	if width <= 0 {
		return ""
	}
	points = points[max(0, len(points)-width):]
	top := 0.0
	for _, p := range points {
		top = max(top, p)
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", width-len(points)))
	for _, p := range points {
		i := 0
		if top > 0 && p > 0 {
			i = min(int(math.Ceil(p/top*float64(len(sparkBlocks))))-1, len(sparkBlocks)-1)
		}
		b.WriteRune(sparkBlocks[max(i, 0)])
	}
	return b.String()
}

// gauge draws a bar of width cells filled to fraction f (0 to 1).
func gauge(f float64, width int) string {
	if width <= 0 {
		return ""
	}
	full := int(math.Round(min(max(f, 0), 1) * float64(width)))
	if f > 0 && full == 0 {
		full = 1 // anything behind shows
	}
	return strings.Repeat("█", full) + strings.Repeat("░", width-full)
}

// clean makes text from the network safe to draw on one line: escape
// sequences and control characters go.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, ansi.Strip(s))
}
