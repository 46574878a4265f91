package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// errSilent is returned by commands that have already told the user.
var errSilent = errors.New("")

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "pushd",
		Short: "A real-time push server: event logs per stream over WebSocket, SSE and long polling",
		Long: `pushd keeps an append-only log of events per stream (a chat room, the stream of
task progress) and fans each event out to every subscriber over WebSocket,
Server-Sent Events or HTTP long polling, on one URL per stream. A client that
reconnects with its cursor gets exactly what it missed, in order, once.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newTokenCmd(), newBenchCmd())
	return root
}
