package tui

import (
	"testing"

	"github.com/pushd/push/protocol"
)

func TestCleanShowsHiddenCharactersAsMarkers(t *testing.T) {
	cases := []struct{ in, one, lines string }{
		{"plain", "plain", "plain"},
		{"\x1b]0;pwned\x07\x1b[2Jhi", "hi", "hi"},
		{"a\tb\r\nc", "a    b  c", "a    b \nc"},
		{"evil\u202eexe.txt", "evil<U+202E>exe.txt", "evil<U+202E>exe.txt"},
		{"\u2066isolate\u2069 \u202a\u202b\u202c\u202d", "<U+2066>isolate<U+2069> <U+202A><U+202B><U+202C><U+202D>", "<U+2066>isolate<U+2069> <U+202A><U+202B><U+202C><U+202D>"},
		{"\u2067\u2068 marks \u200e\u200f\u061c", "<U+2067><U+2068> marks <U+200E><U+200F><U+061C>", "<U+2067><U+2068> marks <U+200E><U+200F><U+061C>"},
		{"ad\u200bmin \u200c\u200d\u2060\ufeff", "ad<U+200B>min <U+200C><U+200D><U+2060><U+FEFF>", "ad<U+200B>min <U+200C><U+200D><U+2060><U+FEFF>"},
		{"héllo 👋", "héllo 👋", "héllo 👋"},
	}
	for _, c := range cases {
		if got := clean(c.in, false); got != c.one {
			t.Errorf("clean(%q, one line) = %q; want %q", c.in, got, c.one)
		}
		if got := clean(c.in, true); got != c.lines {
			t.Errorf("clean(%q, lines) = %q; want %q", c.in, got, c.lines)
		}
	}
}

// The screens and --plain show bidi controls and zero-width characters as
// markers: a name cannot hide a character, and a message cannot reverse
// the text that follows it.
func TestScreensAndPlainShowHiddenCharacters(t *testing.T) {
	m, _ := newChat(t, newFakeConn(), 80, 20)
	connect(m)
	m.Update(updates(roomEv(1, protocol.TypeMessage, "bob", "see invoice\u202efdp.exe and ad\u200bmin")))
	v := m.View()
	lacks(t, v, "\u202e", "\u200b")
	contains(t, v, "see invoice<U+202E>fdp.exe and ad<U+200B>min")

	running := task("t5", "build\u2066 42", protocol.TaskRunning, 5, 10, 0)
	running.Message = "step\ufeff 5"
	w, _ := newWatch(t, newFakeConn(), 100, 20)
	w.Update(updates(taskEv(1, t0, running)))
	v = w.View()
	lacks(t, v, "\u2066", "\ufeff")
	contains(t, v, "build<U+2066> 42", "step<U+FEFF> 5")

	ev := protocol.Event{Stream: "room/lobby", Type: protocol.TypeMessage, Time: t0, User: "bob", Text: "a\u202eb\u200dc"}
	if got, want := PlainEvent(&ev), "2026-11-23T08:30:00.000Z room/lobby message bob a<U+202E>b<U+200D>c"; got != want {
		t.Errorf("--plain: %q; want %q", got, want)
	}
	if got, want := PlainTask(&running), "t5 running 5/10 50% build<U+2066> 42: step<U+FEFF> 5"; got != want {
		t.Errorf("--plain task: %q; want %q", got, want)
	}
}
