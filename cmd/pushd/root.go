package main

import (
	"github.com/spf13/cobra"

	"github.com/pushd/push/internal/version"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "pushd",
		Short: "A real-time push server: event logs per stream over WebSocket, SSE and long polling",
		Long: `pushd keeps an append-only log of events per stream (a chat room, the stream of
task progress) and fans each event out to every subscriber over WebSocket,
Server-Sent Events or HTTP long polling, on one URL per stream. A client that
reconnects with its cursor gets exactly what it missed, in order, once.

Exit codes: 0 done; 1 an error while running; 2 a mistake on the command
line.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("pushd {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(newServeCmd(), newTokenCmd(), newBenchCmd(), newTopCmd(), newVersionCmd())
	return root
}
