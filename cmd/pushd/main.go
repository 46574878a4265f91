// Command pushd is the push server: see `pushd serve --help`.
//
// Exit codes: 0 done; 1 an error while running; 2 a mistake on the
// command line (an unknown flag, a bad flag value, a missing flag, an
// argument too many); 130 interrupted before it was serving.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cmd, err := newRootCmd().ExecuteContextC(ctx)
	stop()
	os.Exit(exitCode(err, cmd, os.Stderr))
}
