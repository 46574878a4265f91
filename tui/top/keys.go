package top

import "github.com/charmbracelet/bubbles/key"

// keys are the screen's keys. While a filter is typed, keys type into it
// instead, but for enter and esc, which end it.
type keys struct {
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Home     key.Binding
	End      key.Binding
	Sort     key.Binding
	Reverse  key.Binding
	Filter   key.Binding
	Open     key.Binding
	Back     key.Binding
	Quit     key.Binding
}

func defaultKeys() keys {
	return keys{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/↓", "select")),
		Down:     key.NewBinding(key.WithKeys("down", "j")),
		PageUp:   key.NewBinding(key.WithKeys("pgup")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", " ")),
		Home:     key.NewBinding(key.WithKeys("home", "g")),
		End:      key.NewBinding(key.WithKeys("end", "G")),
		Sort:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort")),
		Reverse:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reverse")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Open:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "subscribers")),
		Back:     key.NewBinding(key.WithKeys("esc", "backspace", "left"), key.WithHelp("esc", "back")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// mainHelp is the help line of the streams table, roomHelp of a stream's
// subscribers, filterHelp while a filter is typed.
func (k keys) mainHelp() []key.Binding {
	return []key.Binding{k.Up, k.Open, k.Sort, k.Reverse, k.Filter, k.Quit}
}

func (k keys) roomHelp() []key.Binding { return []key.Binding{k.Up, k.Back, k.Quit} }

func (k keys) filterHelp() []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear")),
	}
}
