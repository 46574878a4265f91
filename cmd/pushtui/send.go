package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/protocol"
)

type sendOptions struct {
	room string
}

func newSendCmd(a *app, g *globalOptions) *cobra.Command {
	o := &sendOptions{}
	cmd := &cobra.Command{
		Use:   "send [TEXT...]",
		Short: "Send a message to a room",
		Long: `Send TEXT (the arguments, joined by spaces) to a room as --user. Without
arguments, each line of standard input is sent as a message of its own.

It prints nothing when all went well; with --plain or --json it prints each
stored message, which says where in the room's stream it landed.`,
		Example: `  pushtui send --room ops "deploy finished"
  git log --oneline -3 | pushtui send --room dev --user ci-bot`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), a, g, args)
		},
	}
	cmd.Flags().StringVarP(&o.room, "room", "r", "lobby", "the room to send to")
	return cmd
}

func (o *sendOptions) run(ctx context.Context, a *app, g *globalOptions, args []string) error {
	if err := g.needUser(); err != nil {
		return err
	}
	if err := protocol.ValidateName("room", o.room); err != nil {
		return cli.Usagef("--room %q: use 1 to %d of A-Z a-z 0-9 . _ -", o.room, protocol.MaxNameLen)
	}
	c, err := g.client(a)
	if err != nil {
		return err
	}
	var texts []string
	if len(args) > 0 {
		text := strings.Join(args, " ")
		if strings.TrimSpace(text) == "" {
			return cli.Usagef("nothing to send: the text is empty or only white space; give some text")
		}
		texts = []string{text}
	} else {
		if isTerminal(a.in) {
			return cli.Usagef("nothing to send: give the text as arguments, or pipe lines in")
		}
		sc := bufio.NewScanner(a.in)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			if line := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(line) != "" {
				texts = append(texts, line)
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
	}
	if len(texts) == 0 {
		return cli.Usagef("nothing to send: the text is empty")
	}
	p := a.printer(g)
	for _, text := range texts {
		ev, err := c.Publish(ctx, o.room, text)
		if err != nil {
			return err
		}
		if g.plain || g.json {
			p.event(ev)
		}
	}
	return nil
}
