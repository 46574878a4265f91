package tui

import (
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// The pane handles its own keys and says which it used: the ones that only
// scroll it are used up; End scrolls it and is left for the input line;
// keys that are not its own are left alone.
func TestMessagePaneKeys(t *testing.T) {
	p := newMessagePane(plainStyles(), 0, time.UTC)
	p.SetSize(40, 5)
	for i := range 30 {
		p.add(paneEntry{kind: kindMessage, at: t0, user: "bob", text: fmt.Sprint("line ", i)})
	}
	cases := []struct {
		key      string
		used     bool
		atBottom bool
	}{
		{"pgup", true, false},
		{"pgdown", true, true},
		{"ctrl+home", true, false},
		{"end", false, true},
		{"ctrl+home", true, false},
		{"ctrl+end", false, true},
		{"home", false, true},
		{"up", false, true},
		{"x", false, true},
	}
	for _, tc := range cases {
		cmd, used := p.update(keyMsg(tc.key))
		if used != tc.used || p.AtBottom() != tc.atBottom {
			t.Fatalf("%s: used %v, at the bottom %v; want %v, %v", tc.key, used, p.AtBottom(), tc.used, tc.atBottom)
		}
		if !used && cmd != nil {
			t.Fatalf("%s: a command for a key left alone", tc.key)
		}
	}
	if _, used := p.update(tea.MouseMsg{Button: tea.MouseButtonWheelUp, Action: tea.MouseActionPress}); !used || p.AtBottom() {
		t.Fatalf("the wheel: used %v, at the bottom %v", used, p.AtBottom())
	}
}
