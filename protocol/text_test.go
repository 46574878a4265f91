package protocol_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pushd/push/protocol"
)

func TestValidateTextAllowsWhatPeopleWrite(t *testing.T) {
	for _, s := range []string{"", "hi", "héllo wörld", "emoji 👩‍💻", "bidi \u202e and zero \u200b width pass: the client shows them",
		"\u00a0non-breaking", "\u00ff", strings.Repeat("x", 10_000)} {
		for _, lines := range []bool{false, true} {
			if err := protocol.ValidateText("text", s, lines); err != nil {
				t.Errorf("ValidateText(%q, lines %v): %v", s, lines, err)
			}
		}
	}
	for _, s := range []string{"two\nlines", "a\ttab", "\n\t\n", "windows\r\nline ends\r\n"} {
		if err := protocol.ValidateText("text", s, true); err != nil {
			t.Errorf("ValidateText(%q) of several lines: %v", s, err)
		}
	}
}

// Every refusal says which character, at which byte.
func TestValidateTextNamesTheCharacterAndItsOffset(t *testing.T) {
	for _, c := range []struct {
		s     string
		lines bool
		at    int
		r     rune
		says  string
	}{
		{"\x1b]0;pwned\x07\x1b[2J", true, 0, 0x1b, "U+001B (ESC) at byte 0"},
		{"ok\x07", true, 2, 0x07, "U+0007 (BEL) at byte 2"},
		{"é\r", true, 2, '\r', "U+000D (CR) at byte 2"},
		{"good\rbad\r\n", true, 4, '\r', "U+000D (CR) at byte 4"},
		{"one\r\nline", false, 3, '\r', "U+000D (CR) at byte 3"},
		{"nul\x00", true, 3, 0, "U+0000 (NUL) at byte 3"},
		{"del\x7f", true, 3, 0x7f, "U+007F (DEL) at byte 3"},
		{"c1 \u009b2J", true, 3, 0x9b, "U+009B (CSI) at byte 3"},
		{"c1 \u0085", true, 3, 0x85, "U+0085 (NEL) at byte 3"},
		{"c1 \u0081", true, 3, 0x81, "U+0081 at byte 3"},
		{"one\nline", false, 3, '\n', "U+000A (LF) at byte 3"},
		{"a\tb", false, 1, '\t', "U+0009 (TAB) at byte 1"},
		{"bad \xff utf-8", true, 4, utf8.RuneError, "not valid UTF-8 at byte 4"},
	} {
		err := protocol.ValidateText("message text", c.s, c.lines)
		var te *protocol.TextError
		if !errors.As(err, &te) || !errors.Is(err, protocol.ErrBadValue) {
			t.Errorf("ValidateText(%q): %v; want a *TextError", c.s, err)
			continue
		}
		if te.At != c.at || te.Rune != c.r || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "message text") {
			t.Errorf("ValidateText(%q) = %+v %q; want %q", c.s, te, err, c.says)
		}
	}
}

func TestTaskTextsUseTheTextRules(t *testing.T) {
	err := protocol.ValidateTaskName("build\x1b[31m")
	if !strings.Contains(err.Error(), "U+001B (ESC) at byte 5") {
		t.Errorf("a task name with ESC: %v", err)
	}
	if err := protocol.ValidateTaskMessage("step 1\nstep 2\tdone"); err != nil {
		t.Errorf("a task message of two lines: %v", err)
	}
	if err := protocol.ValidateTaskMessage("\u009d0;title\u009c"); err == nil || !strings.Contains(err.Error(), "U+009D (OSC) at byte 0") {
		t.Errorf("a task message with OSC: %v", err)
	}
}
