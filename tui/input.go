package tui

import (
	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// maxHistory bounds the input line's history.
const maxHistory = 200

// maxInputRows is the most rows the input grows to; longer text scrolls
// within it.
const maxInputRows = 5

// inputLine is the chat screen's text input with a history of what was
// sent: Up on the first row recalls older lines, Down on the last row
// newer ones and finally the draft that was being typed. Alt+Enter (and
// Shift+Enter, where the terminal tells it from Enter) breaks the line,
// and a paste keeps its line breaks; the input grows to maxInputRows rows.
type inputLine struct {
	ta      textarea.Model
	keys    inputKeys
	history []string
	pos     int    // index into history while browsing; len(history) when not
	draft   string // what was typed before browsing began
}

// inputKeys are the input line's own keys (editing keys are textarea's).
type inputKeys struct {
	Older, Newer, Newline key.Binding
}

// defaultInputKeys returns Up and Down for the history, Alt+Enter for a
// line break.
func defaultInputKeys() inputKeys {
	return inputKeys{
		Older:   key.NewBinding(key.WithKeys("up"), key.WithHelp("↑/↓", "history")),
		Newer:   key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "newer")),
		Newline: key.NewBinding(key.WithKeys("alt+enter", "shift+enter", "ctrl+j"), key.WithHelp("alt+enter", "newline")),
	}
}

// newInputLine returns a focused input line with a prompt and placeholder.
func newInputLine(st *Styles, placeholder string) inputLine {
	ta := textarea.New()
	ta.SetPromptFunc(lenPrompt, func(row int) string {
		if row == 0 {
			return "› "
		}
		return "  "
	})
	ta.Placeholder = placeholder
	ta.ShowLineNumbers = false
	// No limit of its own: the server's (which this side does not know)
	// is the one that counts, and a send over it fails with the server's
	// message saying so, instead of the text being cut here unseen.
	ta.CharLimit = 0
	ta.MaxWidth = 0
	ta.MaxHeight = maxInputRows
	plain := lipgloss.NewStyle()
	style := textarea.Style{Base: plain, CursorLine: plain, CursorLineNumber: plain, EndOfBuffer: plain, LineNumber: plain,
		Placeholder: st.Dim, Prompt: st.Accent, Text: st.Text}
	ta.FocusedStyle, ta.BlurredStyle = style, style
	ta.Cursor.Style = st.Accent
	ta.Cursor.TextStyle = st.Text
	ta.Cursor.SetMode(cursor.CursorStatic)
	// Enter sends (the chat screen's key); the line break is ours.
	ta.KeyMap.InsertNewline = key.NewBinding(key.WithDisabled())
	ta.SetHeight(1)
	ta.Focus()
	return inputLine{ta: ta, keys: defaultInputKeys()}
}

// SetSize sets the input's width; its height follows the text.
func (in *inputLine) SetSize(w, _ int) {
	in.ta.SetWidth(max(w, lenPrompt+2))
	in.fit()
}

// fit grows or shrinks the input to its rows, at most maxInputRows.
func (in *inputLine) fit() {
	in.ta.SetHeight(min(max(in.ta.LineCount(), 1), maxInputRows))
}

// Height returns the rows the input takes.
func (in *inputLine) Height() int { return min(max(in.ta.LineCount(), 1), maxInputRows) }

// lenPrompt is the width of the prompt "› ".
const lenPrompt = 2

// Value returns the text in the input.
func (in *inputLine) Value() string { return in.ta.Value() }

// SetValue replaces the text and puts the cursor at its end.
func (in *inputLine) SetValue(s string) {
	in.ta.SetValue(s)
	in.fit()
}

// Insert types s at the cursor.
func (in *inputLine) Insert(s string) {
	in.ta.InsertString(s)
	in.fit()
}

// Reset empties the input and ends history browsing.
func (in *inputLine) Reset() {
	in.ta.Reset()
	in.fit()
	in.pos = len(in.history)
	in.draft = ""
}

// Remember adds a sent text to the history (not twice in a row).
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

// Update handles the history and line-break keys and hands every other
// message to the textarea. Text that arrives in one chunk (see isText) is
// inserted as it is, line breaks kept, never taken for a key.
func (in inputLine) Update(msg tea.Msg) (inputLine, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case isText(k):
			in.Insert(string(k.Runes))
			return in, nil
		case key.Matches(k, in.keys.Newline):
			in.Insert("\n")
			return in, nil
		case key.Matches(k, in.keys.Older) && in.ta.Line() == 0:
			if in.pos > 0 {
				if in.pos == len(in.history) {
					in.draft = in.ta.Value()
				}
				in.pos--
				in.SetValue(in.history[in.pos])
			}
			return in, nil
		case key.Matches(k, in.keys.Newer) && in.ta.Line() == in.ta.LineCount()-1:
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
	in.ta, cmd = in.ta.Update(msg)
	in.fit()
	return in, cmd
}

// View draws the input, Height rows.
func (in inputLine) View() string { return in.ta.View() }
