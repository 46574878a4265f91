package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

// Common is the part of every screen's config that all screens share; the
// configs (ChatConfig, WatchConfig, FollowConfig) embed it.
type Common struct {
	// Server is the server's address, shown in the header.
	Server string
	// Transport is the transport asked for ("auto", "ws", ...), shown
	// until a connection says which one it uses (default "auto").
	Transport string
	// Styles draw the screen (default: plain text).
	Styles *Styles
	// Now is the clock (default time.Now); tests fix it.
	Now func() time.Time
	// Timeout bounds each request to the server (default 10 s).
	Timeout time.Duration
	// Bell, when set, rings the terminal's bell (a message that names the
	// user); it is called from Update.
	Bell func()
}

// SetDefaults fills in what is not set: plain styles, time.Now, a 10 s
// timeout and the "auto" transport.
func (c *Common) SetDefaults() {
	if c.Styles == nil {
		c.Styles = plainStyles()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Transport == "" {
		c.Transport = "auto"
	}
}

// frame is what every screen holds beside its own parts: the Common
// config, the screen's size, the connection its header shows, the
// spinner, the help line, the events already applied, and whether the
// updates ended or the user is leaving. The models embed it and call it
// from their Update and View, on the program's goroutine.
type frame struct {
	Common
	updates  <-chan Update
	width    int
	height   int
	link     connInfo // the connection of the stream the header shows
	spin     spinner.Model
	spinning bool
	help     help.Model
	seen     dedupe
	closed   bool // the updates channel was closed
	quitting bool // the user asked to leave
}

// newFrame returns the frame of a screen that reads updates and shows the
// connection to stream in its header, connecting at first.
func newFrame(c Common, updates <-chan Update, stream string) frame {
	c.SetDefaults()
	f := frame{
		Common:  c,
		updates: updates,
		spin:    spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(c.Styles.Accent)),
		help:    c.Styles.help(),
		seen:    dedupe{},
	}
	f.link.set(Status{Stream: stream, State: client.StateConnecting, Transport: c.Transport}, c.Now())
	return f
}

// nextUpdates returns the command that waits for the next updates.
func (f *frame) nextUpdates() tea.Cmd { return waitForUpdates(f.updates) }

// setSize records the screen's size.
func (f *frame) setSize(w, h int) {
	f.width, f.height = w, h
	f.help.Width = w
}

// setStatus records a change of the header's connection.
func (f *frame) setStatus(s Status) { f.link.set(s, f.Now()) }

// eachFresh goes through a batch of updates in order: it records each
// change of the header's connection and hands fn each event not applied
// before.
func (f *frame) eachFresh(us []Update, fn func(e *protocol.Event)) {
	for _, u := range us {
		switch {
		case u.Status != nil:
			f.setStatus(*u.Status)
		case u.Event != nil && f.seen.fresh(u.Event):
			fn(u.Event)
		}
	}
}

// endUpdates records that the updates channel closed: the connection has
// ended for good.
func (f *frame) endUpdates() {
	f.closed = true
	f.setStatus(Status{Stream: f.link.Stream, State: client.StateClosed, Transport: f.link.Transport})
}

// updated is what follows a batch of updates: the wait for the next
// batch, or, when the channel has closed, the end of the connection; and
// the spinner for what the header now shows (more: see animate).
func (f *frame) updated(closed, more bool) tea.Cmd {
	if closed {
		f.endUpdates()
		return f.animate(more)
	}
	return tea.Batch(f.nextUpdates(), f.animate(more))
}

// animate starts the spinner, unless it is turning already, when the
// header's connection is on its way or the screen has more to show turning
// (live tasks).
func (f *frame) animate(more bool) tea.Cmd {
	if f.spinning || !(f.link.busy() || more) {
		return nil
	}
	f.spinning = true
	return f.spin.Tick
}

// tick turns the spinner, or lets it stop when nothing needs it any more
// (see animate).
func (f *frame) tick(msg spinner.TickMsg, more bool) tea.Cmd {
	if !(f.link.busy() || more) {
		f.spinning = false
		return nil
	}
	var cmd tea.Cmd
	f.spin, cmd = f.spin.Update(msg)
	return cmd
}

// linkView draws the header's connection state.
func (f *frame) linkView() string {
	return f.link.view(f.Styles, f.Now(), f.spin.View())
}

// request returns a command that calls do with a context bounded by the
// Timeout, off the program's goroutine, and returns its message.
func (f *frame) request(do func(ctx context.Context) tea.Msg) tea.Cmd {
	timeout := f.Timeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return do(ctx)
	}
}
