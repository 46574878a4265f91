package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// presenceMsg is the answer to a presence fetch. Gen tells answers to old
// fetches apart from the latest.
type presenceMsg struct {
	Gen   int
	Users []string
	Err   error
}

// presenceList is the side list of who is in the room. It is set from the
// presence endpoint and kept current by login and logout events; events
// that arrive while a fetch is under way are applied again on top of its
// answer, so the list never goes back in time.
type presenceList struct {
	st      *Styles
	me      string
	users   map[string]bool
	loaded  bool
	err     error
	failed  time.Time // when the last fetch failed
	gen     int       // the fetch under way or last done
	pending []change  // changes seen since that fetch began
	// stale is when the room's connection dropped (zero while it is up):
	// the list is then what it was at that time, drawn dimmed.
	stale  time.Time
	loc    *time.Location // of stale's time
	width  int
	height int
}

// change is a login (in) or logout (!in) of user.
type change struct {
	user string
	in   bool
}

// newPresenceList returns an empty list for the room of user me.
func newPresenceList(st *Styles, me string, loc *time.Location) presenceList {
	return presenceList{st: st, me: me, users: map[string]bool{}, loc: loc}
}

// SetSize sets the list's width and height.
func (p *presenceList) SetSize(w, h int) { p.width, p.height = w, h }

// startFetch begins a new fetch and returns its generation.
func (p *presenceList) startFetch() int {
	p.gen++
	p.pending = p.pending[:0]
	p.failed = time.Time{}
	return p.gen
}

// apply records a login or logout.
func (p *presenceList) apply(user string, in bool) {
	p.pending = append(p.pending, change{user, in})
	if in {
		p.users[user] = true
	} else {
		delete(p.users, user)
	}
}

// retryAfter is how long after a failed fetch the next one may start.
const retryAfter = 3 * time.Second

// set takes a fetch's answer at now; answers to old fetches are ignored.
func (p *presenceList) set(msg presenceMsg, now time.Time) {
	if msg.Gen != p.gen {
		return
	}
	if msg.Err != nil {
		p.err, p.failed = msg.Err, now
		return
	}
	p.err, p.loaded = nil, true
	p.users = make(map[string]bool, len(msg.Users))
	for _, u := range msg.Users {
		p.users[u] = true
	}
	for _, c := range p.pending {
		if c.in {
			p.users[c.user] = true
		} else {
			delete(p.users, c.user)
		}
	}
	p.pending = p.pending[:0]
}

// retryDue reports whether the last fetch failed long enough ago to try
// again; the chat screen asks whenever updates arrive.
func (p *presenceList) retryDue(now time.Time) bool {
	return p.err != nil && !p.failed.IsZero() && now.Sub(p.failed) >= retryAfter
}

// Users returns who is present, sorted.
func (p *presenceList) Users() []string {
	us := make([]string, 0, len(p.users))
	for u := range p.users {
		us = append(us, u)
	}
	slices.Sort(us)
	return us
}

// View draws the list: a title with the count, then one user a line, you
// marked; "+N more" when they do not fit.
func (p presenceList) View() string {
	if p.width <= 0 || p.height <= 0 {
		return ""
	}
	st := p.st
	users := p.Users()
	lines := make([]string, 0, p.height)
	title := fmt.Sprintf("Here (%d)", len(users))
	if !p.loaded && len(users) == 0 {
		title = "Here"
	}
	lines = append(lines, st.Dim.Bold(true).Render(ansi.Truncate(title, p.width, "…")))
	if !p.stale.IsZero() {
		lines = append(lines, st.Warn.Render(ansi.Truncate("as of "+p.stale.In(p.loc).Format("15:04:05"), p.width, "…")))
	}
	if p.err != nil {
		lines = append(lines, st.Error.Render(ansi.Truncate("could not load; retrying", p.width, "…")))
	}
	room := p.height - len(lines)
	for i, u := range users {
		if i == room-1 && len(users) > room {
			lines = append(lines, st.Dim.Render(fmt.Sprintf("+%d more", len(users)-i)))
			break
		}
		name := ansi.Truncate(clean(u, false), p.width-2, "…")
		line := st.User(u).Render("●") + " " + st.User(u).Render(name)
		if !p.stale.IsZero() {
			line = st.Dim.Render("○ " + name)
		}
		if u == p.me && lipgloss.Width(line)+6 <= p.width {
			line += st.Dim.Render(" (you)")
		}
		lines = append(lines, line)
	}
	for len(lines) < p.height {
		lines = append(lines, "")
	}
	for i, l := range lines {
		if w := lipgloss.Width(l); w < p.width {
			lines[i] = l + strings.Repeat(" ", p.width-w)
		}
	}
	return strings.Join(lines[:p.height], "\n")
}
