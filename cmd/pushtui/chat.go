package main

import (
	"context"
	"fmt"
	"io"
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
	sinceLast  bool
	missed     int
	bell       bool
}

func newChatCmd(a *app, g *globalOptions) *cobra.Command {
	o := &chatOptions{}
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Join chat rooms: talk, and see who comes and goes",
		Long: `Join chat rooms as --user. On a terminal it draws the rooms: messages,
who is here, running tasks, and a line to type in (Enter sends, Alt+Enter
breaks the line; /help lists the commands; Esc or Ctrl+C leaves). With
several rooms (--room a,b,c, or /join ROOM) a list shows them with their
unread messages and mentions; Alt+1..9, Ctrl+N and Ctrl+P switch.

It remembers where you left each room (per server, user and room, under
$XDG_STATE_HOME/pushtui) and starts there next time: what you missed shows
under "N new since you left", at most --missed events (scroll up for the
rest). --since-last=false starts at the room's latest events instead.

Not on a terminal, or with --plain or --json, it prints one line per event
of the room and sends every line read from standard input, in order, once
it is in the room (so its login comes before them); lines read while it
reconnects, or before pushd is up, wait until it is there (at most 5
minutes: then the lines waiting are given up and it exits 1). At the end
of standard input it prints the room up to its last message and exits: 0
when every line was sent, 1 when some were not. With --follow it goes on
printing the room until interrupted.`,
		Example: `  pushtui chat
  pushtui chat --room lobby,dev,ops
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
	f.StringVarP(&o.room, "room", "r", "lobby", "the rooms to join, separated by commas (the first is shown); piped, one room")
	f.IntVar(&o.history, "history", 20, "show this many of a room's latest events on joining, and after a reset (0: only new ones)")
	f.IntVar(&o.scrollback, "scrollback", tui.DefaultScrollback, "lines the screen keeps for scrolling back, per room")
	f.BoolVar(&o.follow, "follow", false, "not on a terminal: keep printing the room after the end of standard input, until interrupted")
	f.BoolVar(&o.sinceLast, "since-last", true, "on a terminal: start each room where you left it last time, showing what you missed")
	f.IntVar(&o.missed, "missed", 200, "show at most this many of the events missed since last time (scroll up for older ones)")
	f.BoolVar(&o.bell, "bell", true, "ring the terminal's bell when a message names you")
	return cmd
}

// rooms returns the rooms of --room, checked, without repeats.
func (o *chatOptions) rooms() ([]string, error) {
	var rooms []string
	for _, r := range strings.Split(o.room, ",") {
		r = strings.TrimPrefix(strings.TrimSpace(r), "#")
		if err := protocol.ValidateName("room", r); err != nil {
			return nil, cli.Usagef("--room %q: give room names of 1 to %d of A-Z a-z 0-9 . _ -, separated by commas", o.room, protocol.MaxNameLen)
		}
		if !slices.Contains(rooms, r) {
			rooms = append(rooms, r)
		}
	}
	return rooms, nil
}

func (o *chatOptions) run(ctx context.Context, a *app, g *globalOptions) error {
	if err := g.needUser(); err != nil {
		return err
	}
	rooms, err := o.rooms()
	if err != nil {
		return err
	}
	if o.history < 0 || o.scrollback < 0 || o.missed < 0 {
		return cli.Usagef("--history, --scrollback and --missed cannot be negative")
	}
	c, tr, err := g.subscriber(a)
	if err != nil {
		return err
	}
	if !g.screen(a) {
		if len(rooms) > 1 {
			return cli.Usagef("--room %q: piped chat takes one room", o.room)
		}
		return o.runPlain(ctx, a, g, c, tr, rooms[0])
	}
	// One request first: a server that is not there, or refuses us, is a
	// one-line error rather than a screen that keeps reconnecting.
	for _, room := range rooms {
		if _, err := c.Presence(ctx, room); err != nil {
			return err
		}
	}
	mem, err := openMemory(a.getenv, c.BaseURL(), g.user)
	if err != nil {
		fmt.Fprintf(a.errOut, "pushtui: %v; rooms start afresh\n", err)
	}
	rc := newRoomsConn(ctx, c, roomStart{transport: tr, user: g.user, history: o.history, sinceLast: o.sinceLast, missed: o.missed}, mem)
	for _, room := range rooms {
		rc.Join(room)
	}
	if err := rc.started(ctx, startupWait); err != nil {
		_ = rc.Close()
		return err
	}
	common := g.common(a, c, tr)
	if o.bell {
		common.Bell = func() { _, _ = io.WriteString(a.out, "\a") }
	}
	m := tui.NewRoomsModel(tui.RoomsConfig{
		Common:     common,
		Conn:       rc,
		Rooms:      rooms,
		User:       g.user,
		Scrollback: o.scrollback,
		// Until tokens say otherwise, a user who may use every room sees
		// the tasks shown to everyone in every room's strip.
		RoomTasksOnly: roomTasksOnly(g.token),
	})
	err = a.runProgram(ctx, m, tea.WithAltScreen(), tea.WithMouseCellMotion())
	if serr := rc.Close(); serr != nil {
		fmt.Fprintf(a.errOut, "pushtui: %v\n", serr)
	}
	return screenErr(ctx, err)
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
