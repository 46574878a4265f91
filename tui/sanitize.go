package tui

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/charmbracelet/x/ansi"
)

// clean makes text from the network safe to draw: escape sequences are
// removed (a message must not move the cursor or recolour the screen), tabs
// become spaces and other control characters are dropped. Newlines are kept
// when keepNewlines is set. Characters a terminal would obey without
// showing them, bidi controls (which reorder the text around them) and
// zero-width characters (which hide in it), are shown as markers that
// name them (see hidden).
func clean(s string, keepNewlines bool) string {
	if s == "" {
		return s
	}
	s = ansi.Strip(s)
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || hidden(r) }) {
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
		case hidden(r):
			fmt.Fprintf(&b, "<U+%04X>", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// hidden reports whether r is a character that clean shows as a marker,
// "<U+202E>", instead of passing it to the terminal: the bidi embeddings,
// overrides and isolates (U+202A to U+202E, U+2066 to U+2069) and marks
// (U+200E, U+200F, U+061C), which can make text read otherwise than it
// is, and the zero-width characters (U+200B to U+200D, U+2060, U+FEFF),
// which can hide in a name or a word.
func hidden(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff:
		return true
	}
	return false
}
