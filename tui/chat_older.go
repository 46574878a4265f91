package tui

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/protocol"
)

// olderPage is how many events one backwards read asks for.
const olderPage = 100

// olderState is what the chat screen knows of the room's history above
// its oldest line of the current epoch.
type olderState struct {
	oldest  protocol.Cursor // the oldest event shown of the current epoch
	has     bool            // oldest is set
	loading bool            // a read is under way
	done    bool            // nothing older can be read
}

// note records an event shown: the first of an epoch is the oldest.
func (o *olderState) note(c protocol.Cursor) {
	if !o.has {
		o.oldest, o.has = c, true
	}
}

// reset forgets the oldest event: the room's history began anew, and
// the next event starts it.
func (o *olderState) reset() { *o = olderState{loading: o.loading} }

// olderMsg is the answer to a backwards read.
type olderMsg struct {
	before protocol.Cursor
	page   *protocol.Page
	err    error
}

// olderAtTop loads older history when a key or the wheel tried to scroll
// up with the pane already at its top.
func (m *ChatModel) olderAtTop(msg tea.Msg) tea.Cmd {
	up := false
	switch msg := msg.(type) {
	case tea.KeyMsg:
		up = key.Matches(msg, m.pane.keys.PageUp, m.pane.keys.Top)
	case tea.MouseMsg:
		up = msg.Button == tea.MouseButtonWheelUp
	}
	if !up || !m.pane.vp.AtTop() {
		return nil
	}
	return m.loadOlder()
}

// loadOlder begins reading the page before the oldest event shown.
func (m *ChatModel) loadOlder() tea.Cmd {
	o := &m.older
	switch {
	case o.loading:
		return nil
	case o.done || !o.has:
		m.pane.add(paneEntry{kind: kindSystem, at: m.Now(), text: "nothing older to load"})
		return nil
	}
	o.loading = true
	conn, before := m.conn, o.oldest
	return m.request(func(ctx context.Context) tea.Msg {
		p, err := conn.ReadBefore(ctx, before, olderPage)
		return olderMsg{before: before, page: p, err: err}
	})
}

// gotOlder puts a page of older history above the oldest line of the
// current epoch, keeping in view what was in view.
func (m *ChatModel) gotOlder(msg olderMsg) {
	o := &m.older
	o.loading = false
	if !o.has || msg.before != o.oldest {
		return // the room began anew meanwhile
	}
	var pe *protocol.Error
	switch {
	case errors.As(msg.err, &pe) && pe.Status == http.StatusConflict:
		o.done = true
		m.pane.add(paneEntry{kind: kindSystem, at: m.Now(), text: "older messages are gone: the server began this room's history anew"})
		return
	case msg.err != nil:
		m.pane.add(paneEntry{kind: kindError, at: m.Now(), text: "could not load older messages: " + errText(msg.err)})
		return
	}
	var es []paneEntry
	if msg.page.Before == "" {
		o.done = true
		es = append(es, paneEntry{kind: kindSystem, at: m.Now(), text: fmt.Sprintf("── the start of #%s ──", m.room)})
	}
	for i := range msg.page.Events {
		e := &msg.page.Events[i]
		switch e.Type {
		case protocol.TypeMessage:
			es = append(es, m.messageEntry(e))
		case protocol.TypeLogin, protocol.TypeLogout:
			es = append(es, eventEntry(e))
		}
	}
	if len(msg.page.Events) > 0 {
		o.oldest = msg.page.Events[0].Cursor()
	}
	if !m.pane.insertBefore(msg.before, es...) {
		o.done = true // the scrollback is full
	}
}
