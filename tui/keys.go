package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// isText reports whether k is text rather than a key press: a paste, or
// runes that arrived in one chunk. A terminal sends a key press as one
// rune or as an escape sequence; several runes at once are text typed
// faster than read, or pasted without bracketed paste. Their String() is
// the text itself ("down", "esc"), which key.Matches would take for a key
// name, so they must never reach a binding.
func isText(k tea.KeyMsg) bool {
	return k.Paste || (k.Type == tea.KeyRunes && len(k.Runes) > 1)
}

// asText returns text k as a paste, which no binding matches (its String
// is bracketed) and a text input inserts as it is.
func asText(k tea.KeyMsg) tea.KeyMsg {
	k.Type, k.Paste = tea.KeyRunes, true
	return k
}

// chatKeys are the chat screen's keys. Typing goes to the input line, so
// the screen's own keys are ones that type nothing.
type chatKeys struct {
	Send     key.Binding
	Newline  key.Binding // shown only: the input line's
	Complete key.Binding
	History  key.Binding
	Scroll   key.Binding
	Quit     key.Binding
	Help     key.Binding // shown only: /help is typed
}

// defaultChatKeys returns the chat screen's keys.
func defaultChatKeys() chatKeys {
	return chatKeys{
		Send:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
		Newline:  defaultInputKeys().Newline,
		Complete: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "complete")),
		History:  defaultInputKeys().Older,
		Scroll:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "scroll")),
		Quit:     key.NewBinding(key.WithKeys("ctrl+c", "esc"), key.WithHelp("esc", "quit")),
		Help:     key.NewBinding(key.WithKeys("/"), key.WithHelp("/help", "commands")),
	}
}

// ShortHelp implements help.KeyMap.
func (k chatKeys) ShortHelp() []key.Binding {
	return []key.Binding{k.Send, k.Newline, k.Help, k.Quit, k.Scroll}
}

// FullHelp implements help.KeyMap.
func (k chatKeys) FullHelp() [][]key.Binding { return [][]key.Binding{k.ShortHelp()} }

// watchKeys are the task list's keys.
type watchKeys struct {
	Select   key.Binding // shown only, in the short help: Up and Down
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Top      key.Binding
	Bottom   key.Binding
	Cancel   key.Binding
	New      key.Binding
	Help     key.Binding
	Quit     key.Binding
}

// defaultWatchKeys returns the task list's keys.
func defaultWatchKeys() watchKeys {
	return watchKeys{
		Select:   key.NewBinding(key.WithKeys("up", "down", "k", "j"), key.WithHelp("↑/↓", "select")),
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "newest")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "oldest")),
		Cancel:   key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "cancel")),
		New:      key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "new demo")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "more")),
		Quit:     key.NewBinding(key.WithKeys("q", "esc", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// ShortHelp implements help.KeyMap.
func (k watchKeys) ShortHelp() []key.Binding {
	return []key.Binding{k.Select, k.Cancel, k.New, k.Quit, k.Help}
}

// FullHelp implements help.KeyMap.
func (k watchKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown},
		{k.Top, k.Bottom},
		{k.Cancel, k.New},
		{k.Help, k.Quit},
	}
}

// followKeys are the single-task view's keys.
type followKeys struct {
	Cancel key.Binding
	Quit   key.Binding
}

// defaultFollowKeys returns the single-task view's keys.
func defaultFollowKeys() followKeys {
	return followKeys{
		Cancel: key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "cancel task")),
		Quit:   key.NewBinding(key.WithKeys("q", "esc", "ctrl+c"), key.WithHelp("q", "stop watching")),
	}
}

// ShortHelp implements help.KeyMap.
func (k followKeys) ShortHelp() []key.Binding { return []key.Binding{k.Cancel, k.Quit} }

// FullHelp implements help.KeyMap.
func (k followKeys) FullHelp() [][]key.Binding { return [][]key.Binding{k.ShortHelp()} }
