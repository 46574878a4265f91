package tui

import (
	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// maxHistory bounds the input line's history.
const maxHistory = 200

// inputLine is the chat screen's text input with a history of what was
// sent: Up recalls older lines, Down newer ones and finally the draft that
// was being typed.
type inputLine struct {
	ti      textinput.Model
	keys    inputKeys
	history []string
	pos     int    // index into history while browsing; len(history) when not
	draft   string // what was typed before browsing began
}

// inputKeys are the input line's own keys (editing keys are textinput's).
type inputKeys struct {
	Older key.Binding
	Newer key.Binding
}

// defaultInputKeys returns Up and Down for the history.
func defaultInputKeys() inputKeys {
	return inputKeys{
		Older: key.NewBinding(key.WithKeys("up", "ctrl+p"), key.WithHelp("↑/↓", "history")),
		Newer: key.NewBinding(key.WithKeys("down", "ctrl+n"), key.WithHelp("↓", "newer")),
	}
}

// newInputLine returns a focused input line with a prompt and placeholder.
func newInputLine(st *Styles, placeholder string) inputLine {
	ti := textinput.New()
	ti.Prompt = "› "
	ti.Placeholder = placeholder
	ti.PromptStyle = st.Accent
	ti.TextStyle = st.Text
	ti.PlaceholderStyle = st.Dim
	ti.Cursor.Style = st.Accent
	ti.Cursor.TextStyle = st.Text
	ti.Cursor.SetMode(cursor.CursorStatic)
	// No limit of its own: the server's (which this side does not know)
	// is the one that counts, and a send over it fails with the server's
	// message saying so, instead of the text being cut here unseen.
	ti.CharLimit = 0
	ti.Focus()
	return inputLine{ti: ti, keys: defaultInputKeys()}
}

// SetSize sets the line's width (its height is one line).
func (in *inputLine) SetSize(w, _ int) {
	in.ti.Width = max(w-lenPrompt-1, 1)
}

// lenPrompt is the width of the prompt "› ".
const lenPrompt = 2

// Value returns the text in the line.
func (in *inputLine) Value() string { return in.ti.Value() }

// SetValue replaces the text and puts the cursor at its end.
func (in *inputLine) SetValue(s string) {
	in.ti.SetValue(s)
	in.ti.CursorEnd()
}

// Reset empties the line and ends history browsing.
func (in *inputLine) Reset() {
	in.ti.Reset()
	in.pos = len(in.history)
	in.draft = ""
}

// Remember adds a sent line to the history (not twice in a row).
func (in *inputLine) Remember(s string) {
	if s == "" {
		return
	}
	if n := len(in.history); n == 0 || in.history[n-1] != s {
		in.history = append(in.history, s)
		if len(in.history) > maxHistory {
			in.history = in.history[len(in.history)-maxHistory:]
		}
	}
	in.pos = len(in.history)
	in.draft = ""
}

// Update handles the history keys and hands every other message to the
// text input. Text that arrives in one chunk (see isText) is inserted as
// it is, never taken for the history keys or the text input's own.
func (in inputLine) Update(msg tea.Msg) (inputLine, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case isText(k):
			msg = asText(k)
		case key.Matches(k, in.keys.Older):
			if in.pos > 0 {
				if in.pos == len(in.history) {
					in.draft = in.ti.Value()
				}
				in.pos--
				in.SetValue(in.history[in.pos])
			}
			return in, nil
		case key.Matches(k, in.keys.Newer):
			if in.pos < len(in.history) {
				in.pos++
				if in.pos == len(in.history) {
					in.SetValue(in.draft)
				} else {
					in.SetValue(in.history[in.pos])
				}
			}
			return in, nil
		}
	}
	var cmd tea.Cmd
	in.ti, cmd = in.ti.Update(msg)
	return in, cmd
}

// View draws the line.
func (in inputLine) View() string { return in.ti.View() }
