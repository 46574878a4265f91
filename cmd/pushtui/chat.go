package main

import (
	"context"
	"slices"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/cli"
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
it is in the room (so its login comes before them); lines read while it
reconnects wait until it is back (at most 5 minutes: then the lines
waiting are given up and it exits 1). At the end of standard input it
prints the room up to its last message and exits: 0 when every line was
sent, 1 when some were not. With --follow it goes on printing the room
until interrupted.`,
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
		return cli.Usagef("--room %q: use 1 to %d of A-Z a-z 0-9 . _ -", o.room, protocol.MaxNameLen)
	}
	if o.history < 0 || o.scrollback < 0 {
		return cli.Usagef("--history and --scrollback cannot be negative")
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
		Common:     g.common(a, c, tr),
		Conn:       &chatConn{feed: f, c: c, room: o.room},
		Room:       o.room,
		User:       g.user,
		Scrollback: o.scrollback,
		// Until tokens say otherwise, a user who may use every room sees
		// the tasks shown to everyone in every room's strip.
		RoomTasksOnly: roomTasksOnly(g.token),
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

// roomTasksOnly reports whether the chat's task strip shows only the
// room's tasks (tui.ChatConfig.RoomTasksOnly): with a token that does not
// allow every room.
func roomTasksOnly(token string) bool {
	if strings.TrimSpace(token) == "" {
		return false
	}
	rooms, err := client.TokenRooms(token)
	return err != nil || !slices.Contains(rooms, "*")
}
