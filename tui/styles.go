package tui

import (
	"hash/fnv"
	"io"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/pushd/push/protocol"
)

// Styles is the look of every screen. Build it with NewStyles; the zero
// value draws nothing special but is usable.
type Styles struct {
	renderer *lipgloss.Renderer

	Title     lipgloss.Style // the badge at the left of a header
	Header    lipgloss.Style // the rest of the header
	Dim       lipgloss.Style // times, separators, hints
	System    lipgloss.Style // login, logout and reset lines
	Text      lipgloss.Style // message text
	Error     lipgloss.Style // failed sends, failed actions
	Good      lipgloss.Style // connected, succeeded
	Warn      lipgloss.Style // reconnecting, reset, cancelled
	Bad       lipgloss.Style // closed, failed
	Accent    lipgloss.Style // running, the "N new" marker
	Mention   lipgloss.Style // a message that names you, the count of them
	Selected  lipgloss.Style // the selected row of a table
	Border    lipgloss.Style // rules between panes
	HelpKey   lipgloss.Style
	HelpDesc  lipgloss.Style
	HelpSep   lipgloss.Style
	BarFull   lipgloss.Color // the filled part of progress bars
	BarEmpty  lipgloss.Color // the empty part of progress bars
	userColor []lipgloss.AdaptiveColor
	mono      bool // attributes only, no colour (MonoStyles)
}

// Theme colours: each adapts to light and dark terminals.
var (
	colAccent = lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#9D86FF"}
	colDim    = lipgloss.AdaptiveColor{Light: "#8A8A8A", Dark: "#6C6C6C"}
	colFaint  = lipgloss.AdaptiveColor{Light: "#C8C8C8", Dark: "#3A3A3A"}
	colText   = lipgloss.AdaptiveColor{Light: "#1A1A1A", Dark: "#E4E4E4"}
	colGood   = lipgloss.AdaptiveColor{Light: "#00875F", Dark: "#3FD69A"}
	colWarn   = lipgloss.AdaptiveColor{Light: "#AF6F00", Dark: "#F2C14E"}
	colBad    = lipgloss.AdaptiveColor{Light: "#D7005F", Dark: "#FF6B8B"}
	colBadge  = lipgloss.AdaptiveColor{Light: "#FFFFFF", Dark: "#FFFFFF"}
	colBadgeB = lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#6B4FD8"}
	colSelect = lipgloss.AdaptiveColor{Light: "#E8E2FF", Dark: "#2E2850"}

	// userColors are told apart easily on both backgrounds; a user's colour
	// is picked by a hash of the name, so it is the same in every session.
	userColors = []lipgloss.AdaptiveColor{
		{Light: "#D75F00", Dark: "#FF8F40"},
		{Light: "#0087AF", Dark: "#4FC1FF"},
		{Light: "#5F8700", Dark: "#A6E22E"},
		{Light: "#AF00AF", Dark: "#F78CFF"},
		{Light: "#875F00", Dark: "#E6C547"},
		{Light: "#005FD7", Dark: "#7AA2F7"},
		{Light: "#D70087", Dark: "#FF79C6"},
		{Light: "#008787", Dark: "#2DE0C8"},
		{Light: "#AF5F5F", Dark: "#FF9E80"},
		{Light: "#5F5FAF", Dark: "#B4A7FF"},
		{Light: "#878700", Dark: "#D7D75F"},
		{Light: "#0087D7", Dark: "#89DDFF"},
	}
)

// NewStyles returns the styles drawn by r. A renderer with the ASCII colour
// profile (lipgloss.NewRenderer(w, termenv.WithProfile(termenv.Ascii)))
// draws plain text.
func NewStyles(r *lipgloss.Renderer) *Styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	n := r.NewStyle
	return &Styles{
		renderer:  r,
		Title:     n().Bold(true).Foreground(colBadge).Background(colBadgeB).Padding(0, 1),
		Header:    n().Foreground(colText),
		Dim:       n().Foreground(colDim),
		System:    n().Foreground(colDim).Italic(true),
		Text:      n().Foreground(colText),
		Error:     n().Foreground(colBad),
		Good:      n().Foreground(colGood),
		Warn:      n().Foreground(colWarn),
		Bad:       n().Foreground(colBad),
		Accent:    n().Foreground(colAccent).Bold(true),
		Mention:   n().Foreground(colWarn).Bold(true),
		Selected:  n().Background(colSelect).Bold(true),
		Border:    n().Foreground(colFaint),
		HelpKey:   n().Foreground(colDim).Bold(true),
		HelpDesc:  n().Foreground(colDim),
		HelpSep:   n().Foreground(colFaint),
		BarFull:   lipgloss.Color(pick(r, colAccent)),
		BarEmpty:  lipgloss.Color(pick(r, colFaint)),
		userColor: userColors,
	}
}

// plainStyles returns styles that draw plain text: no colours, no
// attributes, no escape codes at all. Tests use them.
func plainStyles() *Styles {
	r := lipgloss.NewRenderer(io.Discard, termenv.WithProfile(termenv.Ascii))
	r.SetColorProfile(termenv.Ascii)
	r.SetHasDarkBackground(true)
	return NewStyles(r)
}

// MonoStyles returns styles for terminals without colour (--no-color,
// NO_COLOR): bold, faint, italic and reverse video only, so the cursor and
// the selection still show. r's output should be a terminal.
func MonoStyles(r *lipgloss.Renderer) *Styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	r.SetColorProfile(termenv.ANSI) // attributes only: no colour is ever set
	r.SetHasDarkBackground(true)    // nothing adapts; do not ask the terminal
	n := r.NewStyle
	return &Styles{
		renderer: r,
		mono:     true,
		Title:    n().Bold(true).Reverse(true).Padding(0, 1),
		Header:   n(),
		Dim:      n().Faint(true),
		System:   n().Faint(true).Italic(true),
		Text:     n(),
		Error:    n().Bold(true),
		Good:     n().Bold(true),
		Warn:     n().Bold(true),
		Bad:      n().Bold(true),
		Accent:   n().Bold(true),
		Mention:  n().Bold(true).Underline(true),
		Selected: n().Reverse(true),
		Border:   n().Faint(true),
		HelpKey:  n().Bold(true),
		HelpDesc: n().Faint(true),
		HelpSep:  n().Faint(true),
	}
}

// pick resolves an adaptive colour for r's background.
func pick(r *lipgloss.Renderer, c lipgloss.AdaptiveColor) string {
	if r.HasDarkBackground() {
		return c.Dark
	}
	return c.Light
}

// profile is the colour profile the styles draw with.
func (s *Styles) profile() termenv.Profile {
	if s == nil || s.renderer == nil || s.mono {
		return termenv.Ascii
	}
	return s.renderer.ColorProfile()
}

// User returns the style of a user's name: the same colour for the same
// name, always.
func (s *Styles) User(name string) lipgloss.Style {
	if s.renderer == nil || len(s.userColor) == 0 {
		return s.Accent
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return s.renderer.NewStyle().Bold(true).Foreground(s.userColor[h.Sum32()%uint32(len(s.userColor))])
}

// TaskState returns the style of a task state: running in the accent
// colour, succeeded green, failed red, cancelled yellow, queued dim.
func (s *Styles) TaskState(st protocol.TaskState) lipgloss.Style {
	switch st {
	case protocol.TaskRunning:
		return s.Accent
	case protocol.TaskSucceeded:
		return s.Good
	case protocol.TaskFailed:
		return s.Bad
	case protocol.TaskCancelled:
		return s.Warn
	default:
		return s.Dim
	}
}

// stateBar returns the colour of a progress bar's filled part for a task
// state, so finished tasks show in their state's colour.
func (s *Styles) stateBar(st protocol.TaskState) string {
	r := s.renderer
	if r == nil || s.mono {
		return ""
	}
	switch st {
	case protocol.TaskSucceeded:
		return pick(r, colGood)
	case protocol.TaskFailed:
		return pick(r, colBad)
	case protocol.TaskCancelled:
		return pick(r, colWarn)
	case protocol.TaskQueued:
		return pick(r, colDim)
	default:
		return pick(r, colAccent)
	}
}

// help returns a help bubble drawn with these styles.
func (s *Styles) help() help.Model {
	h := help.New()
	h.Styles = help.Styles{
		Ellipsis:       s.HelpSep,
		ShortKey:       s.HelpKey,
		ShortDesc:      s.HelpDesc,
		ShortSeparator: s.HelpSep,
		FullKey:        s.HelpKey,
		FullDesc:       s.HelpDesc,
		FullSeparator:  s.HelpSep,
	}
	h.ShortSeparator = " · "
	return h
}
