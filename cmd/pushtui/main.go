// Command pushtui is the terminal client of pushd: a chat room with
// presence, and a live view of background tasks. See pushtui --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run())
}

// run runs pushtui on the process's streams and returns its exit code.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	defer a.Close()
	return a.Exit(a.Run(ctx, os.Args[1:]))
}
