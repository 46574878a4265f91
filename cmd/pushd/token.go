package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

type tokenOptions struct {
	auth    authOptions
	user    string
	rooms   string
	publish bool
	tasks   bool
	admin   bool
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
			if o.user == "" {
				return usagef("--user is required: the user the token is for, e.g. --user alice")
			}
			if err := protocol.ValidateName("user", o.user); err != nil {
				return usagef("--user: %s", nameRule(err))
			}
			var rooms []string
			if cmd.Flags().Changed("rooms") {
				var err error
				if rooms, err = parseRooms(o.rooms); err != nil {
					return err
				}
			}
			if o.ttl <= 0 {
				return usagef("--ttl %s: the token's lifetime must be positive, e.g. --ttl 24h", o.ttl)
			}
			secret, err := o.auth.secret()
			if err != nil {
				return err
			}
			if len(secret) == 0 {
				return usagef("give the server's secret with --auth-secret-file or --auth-secret")
			}
			tok, err := server.MintToken(secret, o.user, server.Claims{Rooms: rooms, Publish: o.publish, Tasks: o.tasks, Admin: o.admin}, o.ttl)
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
	f.StringVar(&o.rooms, "rooms", "", "comma-separated room names or patterns (* ? [...]) the user may join, e.g. 'lobby,dev-*' (default: none)")
	f.BoolVar(&o.publish, "publish", false, "may post messages to those rooms")
	f.BoolVar(&o.tasks, "tasks", false, "may start, report on and cancel tasks")
	f.BoolVar(&o.admin, "admin", false, "may see every task and cancel or report on any, whoever started it")
	f.DurationVar(&o.ttl, "ttl", 24*time.Hour, "how long the token is valid")
	return cmd
}
