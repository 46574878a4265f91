package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pushd/push/server"
)

type tokenOptions struct {
	auth    authOptions
	user    string
	rooms   string
	publish bool
	tasks   bool
	ttl     time.Duration
}

func newTokenCmd() *cobra.Command {
	o := tokenOptions{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint a token for a user",
		Example: `  pushd token --auth-secret-file secret --user alice --rooms 'lobby,dev-*' --publish --ttl 24h
  pushtui chat --token "$(pushd token --auth-secret-file secret --user alice --rooms lobby --publish)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := o.auth.secret()
			if err != nil {
				return err
			}
			if len(secret) == 0 {
				return errors.New("give the server's secret with --auth-secret-file or --auth-secret")
			}
			if o.user == "" {
				return errors.New("--user is required")
			}
			var rooms []string
			for r := range strings.SplitSeq(o.rooms, ",") {
				if r = strings.TrimSpace(r); r != "" {
					rooms = append(rooms, r)
				}
			}
			tok, err := server.MintToken(secret, o.user, rooms, o.publish, o.tasks, o.ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	o.auth.addFlags(f)
	f.StringVar(&o.user, "user", "", "the user the token is for (its sub)")
	f.StringVar(&o.rooms, "rooms", "", "comma-separated rooms or patterns the user may join, e.g. 'lobby,dev-*'")
	f.BoolVar(&o.publish, "publish", false, "may post messages to those rooms")
	f.BoolVar(&o.tasks, "tasks", false, "may start, report on and cancel tasks")
	f.DurationVar(&o.ttl, "ttl", 24*time.Hour, "how long the token is valid")
	return cmd
}
