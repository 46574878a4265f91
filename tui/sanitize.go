package tui

import (
	"strings"
	"unicode"

	"github.com/charmbracelet/x/ansi"
)

// clean makes text from the network safe to draw: escape sequences are
// removed (a message must not move the cursor or recolour the screen), tabs
// become spaces and other control characters are dropped. Newlines are kept
// when keepNewlines is set.
func clean(s string, keepNewlines bool) string {
	if s == "" {
		return s
	}
	s = ansi.Strip(s)
	ok := true
	for _, r := range s {
		if unicode.IsControl(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n' && keepNewlines:
			b.WriteRune(r)
		case r == '\t':
			b.WriteString("    ")
		case r == '\n', r == '\r':
			b.WriteRune(' ')
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
