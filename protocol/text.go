package protocol

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text that people see (a message's text, a task's name and its progress
// messages) is UTF-8 without control characters: C0 (U+0000 to U+001F),
// DEL (U+007F) and C1 (U+0080 to U+009F) are refused, so that no text
// can move a terminal's cursor, clear its screen or retitle it. Text of
// several lines (a message, a progress message) may hold newlines (LF, or
// CR LF) and tabs; a one-line text (a task's name) may not.

// TextError is a text that ValidateText refuses: what names the field,
// and At is the byte offset of the first character refused. It wraps
// ErrBadValue.
type TextError struct {
	What string
	At   int
	// Rune is the control character found; utf8.RuneError when the text
	// is not valid UTF-8 there.
	Rune rune
	// Lines says whether the field may hold newlines and tabs.
	Lines bool
}

func (e *TextError) Error() string {
	allowed := "text on one line, without control characters"
	if e.Lines {
		allowed = "text that may hold newlines (LF or CR LF) and tabs but no other control characters"
	}
	if e.Rune == utf8.RuneError {
		return fmt.Sprintf("%v: %s is not valid UTF-8 at byte %d; give %s", ErrBadValue, e.What, e.At, allowed)
	}
	return fmt.Sprintf("%v: %s has the control character %s at byte %d; give %s", ErrBadValue, e.What, RuneName(e.Rune), e.At, allowed)
}

func (e *TextError) Unwrap() error { return ErrBadValue }

// ValidateText checks text people see: valid UTF-8 without C0 or C1
// control characters or DEL, but for newline (LF, or CR LF; a CR alone
// would let a line overwrite what precedes it) and tab when lines is set.
// what names the field in the error, a *TextError.
func ValidateText(what, s string, lines bool) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return &TextError{What: what, At: i, Rune: utf8.RuneError, Lines: lines}
		case (r == '\n' || r == '\t' || r == '\r' && strings.HasPrefix(s[i+1:], "\n")) && lines:
		case IsControl(r):
			return &TextError{What: what, At: i, Rune: r, Lines: lines}
		}
		i += size
	}
	return nil
}

// IsControl reports whether r is a C0 or C1 control character or DEL: the
// characters ValidateText refuses (but for newline and tab in text of
// several lines).
func IsControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// c0Names are the short names of the C0 control characters, by code.
var c0Names = [0x20]string{"NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "TAB", "LF", "VT", "FF", "CR", "SO", "SI",
	"DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US"}

// c1Names are the short names of the C1 control characters terminals act
// on, and of DEL.
var c1Names = map[rune]string{0x7f: "DEL", 0x85: "NEL", 0x90: "DCS", 0x9b: "CSI", 0x9c: "ST", 0x9d: "OSC", 0x9e: "PM", 0x9f: "APC"}

// RuneName names a character as people look it up: "U+001B (ESC)" for a
// control character with a short name, else "U+00E9".
func RuneName(r rune) string {
	name := ""
	switch {
	case r >= 0 && r < 0x20:
		name = c0Names[r]
	default:
		name = c1Names[r]
	}
	if name == "" {
		return fmt.Sprintf("U+%04X", r)
	}
	return fmt.Sprintf("U+%04X (%s)", r, name)
}
