package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/pushd/push/protocol"
)

func TestStyles(t *testing.T) {
	r := lipgloss.NewRenderer(nil, termenv.WithProfile(termenv.TrueColor))
	r.SetColorProfile(termenv.TrueColor)
	r.SetHasDarkBackground(true)
	st := NewStyles(r)
	if st.User("alice").Render("alice") != st.User("alice").Render("alice") {
		t.Fatal("a user's colour changes")
	}
	distinct := map[string]bool{}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		distinct[st.User(u).Render("x")] = true
	}
	if len(distinct) < 4 {
		t.Fatalf("only %d colours for 6 users", len(distinct))
	}
	for _, s := range []protocol.TaskState{protocol.TaskQueued, protocol.TaskRunning, protocol.TaskSucceeded, protocol.TaskFailed, protocol.TaskCancelled} {
		if !strings.Contains(st.TaskState(s).Render("x"), "\x1b[") {
			t.Errorf("%s is not coloured", s)
		}
	}

	mono := MonoStyles(lipgloss.NewRenderer(nil))
	for name, s := range map[string]lipgloss.Style{"selected": mono.Selected, "user": mono.User("alice"), "error": mono.Error, "bar": newBars(mono).m.PercentageStyle} {
		out := s.Render("x") + newBars(mono).view(0.5, 10, protocol.TaskRunning)
		if strings.Contains(out, "38;") || strings.Contains(out, "48;") {
			t.Errorf("mono %s has colour: %q", name, out)
		}
	}
	if !strings.Contains(mono.Selected.Render("x"), "\x1b[7m") {
		t.Error("mono selection is not in reverse video")
	}

	plain := plainStyles()
	if got := plain.Title.Render("x") + plain.User("bob").Render("y"); strings.Contains(got, "\x1b") {
		t.Errorf("plain styles draw escape codes: %q", got)
	}
}
