package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

type chatOptions struct {
	room       string
	history    int
	scrollback int
	follow     bool
}

func newChatCmd(a *app, g *globalOptions) *cobra.Command {
	o := &chatOptions{}
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Join a chat room: talk, and see who comes and goes",
		Long: `Join a chat room as --user. On a terminal it draws the room: messages,
who is here, running tasks, and a line to type in (Enter sends; /help lists
the commands; Esc or Ctrl+C leaves).

Not on a terminal, or with --plain or --json, it prints one line per event
of the room and sends every line read from standard input, in order, once
it is in the room (so its login comes before them). At the end of standard
input it prints the room up to its last message and exits: 0 when every
line was sent, 1 when some were not. With --follow it goes on printing the
room until interrupted.`,
		Example: `  pushtui chat
  pushtui chat --room ops --user alice --transport sse
  pushtui chat --room ops --plain | grep deploy
  pushtui chat --room ops --plain --follow </dev/null >>ops.log
  printf 'deploying\ndone\n' | pushtui chat --room ops --user ci-bot --plain
  tail -f build.log | pushtui chat --room ci --user ci-bot --plain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), a, g)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.room, "room", "r", "lobby", "the room to join")
	f.IntVar(&o.history, "history", 20, "show this many of the room's latest events on joining (0: only new ones)")
	f.IntVar(&o.scrollback, "scrollback", tui.DefaultScrollback, "lines the screen keeps for scrolling back")
	f.BoolVar(&o.follow, "follow", false, "not on a terminal: keep printing the room after the end of standard input, until interrupted")
	return cmd
}

func (o *chatOptions) run(ctx context.Context, a *app, g *globalOptions) error {
	if err := g.needUser(); err != nil {
		return err
	}
	if err := protocol.ValidateName("room", o.room); err != nil {
		return usageErr(fmt.Errorf("--room %q: use 1 to %d of A-Z a-z 0-9 . _ -", o.room, protocol.MaxNameLen))
	}
	if o.history < 0 || o.scrollback < 0 {
		return usageErr(fmt.Errorf("--history and --scrollback cannot be negative"))
	}
	tr, err := g.transportOpt()
	if err != nil {
		return err
	}
	c, err := g.client(a)
	if err != nil {
		return err
	}
	// One request first: a server that is not there, or refuses us, is a
	// one-line error rather than a screen that keeps reconnecting.
	if _, err := c.Presence(ctx, o.room); err != nil {
		return err
	}
	since, err := historySince(ctx, c, client.Room(o.room), o.history)
	if err != nil {
		return err
	}
	room := subSpec{client.Room(o.room), client.SubscribeOptions{MaxBackoff: maxBackoff, Transport: tr, Since: since, User: g.user}}
	if !g.screen(a) {
		return o.runPlain(ctx, a, g, c, room)
	}
	f := startFeed(ctx, c, room, subSpec{client.Tasks(), client.SubscribeOptions{MaxBackoff: maxBackoff, Transport: tr}})
	defer f.Close()
	if err := f.started(ctx, startupWait); err != nil {
		return err
	}
	m := tui.NewChatModel(tui.ChatConfig{
		Conn:       &chatConn{feed: f, c: c, room: o.room},
		Server:     c.BaseURL(),
		Room:       o.room,
		User:       g.user,
		Transport:  string(tr),
		Styles:     g.styles(a),
		Scrollback: o.scrollback,
		Timeout:    requestTimeout,
	})
	err = a.runProgram(ctx, m, tea.WithAltScreen(), tea.WithMouseCellMotion())
	if err := screenErr(ctx, err); err != nil {
		return err
	}
	if m.Result() != nil {
		if err := f.Err(); err != nil {
			return err
		}
	}
	return nil
}

// runPlain prints the room's events and sends the lines of standard input
// once the room is joined. At the end of input, once every line is sent,
// it prints the room up to then and returns, unless --follow: then it goes
// on until interrupted or the server refuses the subscription.
func (o *chatOptions) runPlain(ctx context.Context, a *app, g *globalOptions, c *client.Client, room subSpec) error {
	f := startFeed(ctx, c, room)
	defer f.Close()
	p := a.printer(g)
	inputDone := make(chan sendResult, 1)
	go func() { inputDone <- o.sendLines(ctx, a, c, f) }()
	var (
		sent    sendResult
		target  *protocol.Cursor // done once the room is printed up to here
		timeout <-chan time.Time
	)
	// The last event printed; at first, where the subscription starts.
	last, _ := protocol.ParseCursor(room.opts.Since)
	for {
		select {
		case u, ok := <-f.Updates():
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return f.Err()
			}
			p.update(u)
			if p.err != nil {
				return nil // nobody reads any more (a closed pipe): done
			}
			if u.Event != nil {
				last = u.Event.Cursor()
			}
		case sent = <-inputDone:
			inputDone = nil
			if o.follow || sent.stopped {
				continue
			}
			// Everything sent is in the room by now: print up to here.
			cur, err := c.Cursor(ctx, room.stream)
			if err != nil {
				return err
			}
			target = &cur
			t := time.NewTimer(drainWait)
			defer t.Stop()
			timeout = t.C
		case <-timeout:
			return sent.err()
		}
		if target != nil && last.Epoch == target.Epoch && last.Seq >= target.Seq {
			return sent.err()
		}
	}
}

// drainWait bounds the wait, at the end of input, for the room's events up
// to the last one sent.
const drainWait = requestTimeout

// sendResult is how sending standard input went.
type sendResult struct {
	sent, failed int
	readErr      error
	// stopped: it ended before the end of input, because the subscription
	// or the command did.
	stopped bool
}

// err is the command's error for it: nil when every line went out.
func (r sendResult) err() error {
	switch {
	case r.readErr != nil:
		return fmt.Errorf("read standard input: %w", r.readErr)
	case r.failed > 0:
		return fmt.Errorf("%d of %d lines were not sent", r.failed, r.sent+r.failed)
	}
	return nil
}

// sendLines sends each non-empty line of standard input to the room, one
// after the other, once the room's subscription (f's first) has connected:
// the user is in the room before anything they send. A failed send is
// reported on standard error and the next line is sent.
func (o *chatOptions) sendLines(ctx context.Context, a *app, c *client.Client, f *feed) sendResult {
	var r sendResult
	if !f.connected(ctx, 0) {
		r.stopped = true
		return r
	}
	sc := bufio.NewScanner(a.in)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if _, err := c.Publish(ctx, o.room, text); err != nil {
			if ctx.Err() != nil {
				r.stopped = true
				return r
			}
			r.failed++
			fmt.Fprintln(a.errOut, "pushtui: not sent:", explain(err, c.BaseURL()))
			continue
		}
		r.sent++
	}
	r.readErr = sc.Err()
	return r
}
