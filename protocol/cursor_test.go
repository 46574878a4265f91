package protocol_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/pushd/push/protocol"
)

func TestParseCursor(t *testing.T) {
	epoch64 := strings.Repeat("e", 64)
	good := []struct {
		in   string
		want protocol.Cursor
		str  string // String of the result; in when empty
	}{
		{"0", protocol.Cursor{Seq: 0}, ""},
		{"42", protocol.Cursor{Seq: 42}, ""},
		{"007", protocol.Cursor{Seq: 7}, "7"},
		{"18446744073709551615", protocol.Cursor{Seq: 1<<64 - 1}, ""},
		{"k3x9q2m7b1c4:42", protocol.Cursor{Epoch: "k3x9q2m7b1c4", Seq: 42}, ""},
		{"a:0", protocol.Cursor{Epoch: "a", Seq: 0}, ""},
		{"A.b_c-9:1", protocol.Cursor{Epoch: "A.b_c-9", Seq: 1}, ""},
		{epoch64 + ":5", protocol.Cursor{Epoch: epoch64, Seq: 5}, ""},
	}
	for _, tc := range good {
		c, err := protocol.ParseCursor(tc.in)
		if err != nil || c != tc.want {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v", tc.in, c, err, tc.want)
			continue
		}
		want := tc.str
		if want == "" {
			want = tc.in
		}
		if c.String() != want {
			t.Errorf("ParseCursor(%q).String() = %q; want %q", tc.in, c.String(), want)
		}
	}
	bad := []string{
		"", ":", "a:", ":1", "x:y", "abc", "-1", "+1", "a:-1", "a:+1", "1.5", "1e3", "0x10", " 1", "1 ", "a :1",
		"18446744073709551616", "a:18446744073709551616", "a/b:1", "a b:1", "é:1", "a:1:2", "a::1",
		strings.Repeat("e", 65) + ":1", "1_000", "a:1\n", "\x00",
	}
	for _, in := range bad {
		c, err := protocol.ParseCursor(in)
		if err == nil {
			t.Errorf("ParseCursor(%q) = %+v; want an error", in, c)
			continue
		}
		if !errors.Is(err, protocol.ErrBadCursor) {
			t.Errorf("ParseCursor(%q): %v does not wrap ErrBadCursor", in, err)
		}
		if c != (protocol.Cursor{}) {
			t.Errorf("ParseCursor(%q) returned %+v with its error", in, c)
		}
	}
	// A long bad input does not make a long message.
	if _, err := protocol.ParseCursor(strings.Repeat("x", 10000)); err == nil || len(err.Error()) > 300 {
		t.Errorf("error for a 10,000-byte cursor is %d bytes", len(err.Error()))
	}
}

func TestCursorString(t *testing.T) {
	for _, tc := range []struct {
		c    protocol.Cursor
		want string
	}{
		{protocol.Cursor{}, "0"},
		{protocol.Cursor{Seq: 9}, "9"},
		{protocol.Cursor{Epoch: "e", Seq: 0}, "e:0"},
		{protocol.Cursor{Epoch: "k3x9q2m7b1c4", Seq: 1<<64 - 1}, "k3x9q2m7b1c4:18446744073709551615"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%+v.String() = %q; want %q", tc.c, got, tc.want)
		}
	}
}

// FuzzParseCursor: ParseCursor never panics; what it accepts is a cursor
// whose String parses back to the same cursor, with a valid epoch; what it
// refuses wraps ErrBadCursor.
func FuzzParseCursor(f *testing.F) {
	for _, seed := range []string{"0", "42", "k3x9q2m7b1c4:42", "a:0", "", ":", "a:", ":1", "x:y", "-1", "+1",
		"18446744073709551615", "18446744073709551616", "007", "a:1:2", strings.Repeat("e", 64) + ":1",
		strings.Repeat("e", 65) + ":1", "é:1", "\xff:1", "0x1", "1_0"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := protocol.ParseCursor(s)
		if err != nil {
			if !errors.Is(err, protocol.ErrBadCursor) {
				t.Fatalf("ParseCursor(%q): %v does not wrap ErrBadCursor", s, err)
			}
			return
		}
		again, err := protocol.ParseCursor(c.String())
		if err != nil || again != c {
			t.Fatalf("ParseCursor(%q) = %+v; its String %q parses to %+v, %v", s, c, c.String(), again, err)
		}
		if c.Epoch != "" && protocol.ValidateName("epoch", c.Epoch) != nil {
			t.Fatalf("ParseCursor(%q) accepted the epoch %q", s, c.Epoch)
		}
		// The seq part is a plain decimal number.
		seq := s
		if i := strings.IndexByte(s, ':'); i >= 0 {
			seq = s[i+1:]
		}
		if n, err := strconv.ParseUint(seq, 10, 64); err != nil || n != c.Seq {
			t.Fatalf("ParseCursor(%q) = seq %d; the text says %q", s, c.Seq, seq)
		}
	})
}

func TestParseCursorTooLargeSaysSo(t *testing.T) {
	for _, in := range []string{"18446744073709551616", "ep:12345678901234567890123"} {
		_, err := protocol.ParseCursor(in)
		if err == nil || !strings.Contains(err.Error(), "too large") || strings.Contains(err.Error(), "whole number") {
			t.Errorf("ParseCursor(%q) = %v; want it to say the seq is too large", in, err)
		}
	}
}
