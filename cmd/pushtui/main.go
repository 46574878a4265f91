// Command pushtui is the terminal client of pushd: a chat room with
// presence, and a live view of background tasks.
//
//	pushtui chat [--room lobby]            talk in a room
//	pushtui watch-progress [--task ID]     watch tasks; with --task, wait for one
//	pushtui send [--room R] TEXT           post a message
//	pushtui task start|cancel|list|get|report
//
// On a terminal chat and watch-progress draw a screen; piped, or with
// --plain or --json, they print one line (or JSON object) per event. The
// environment gives defaults: PUSH_SERVER, PUSH_TOKEN, USER, NO_COLOR.
//
// Exit codes: 0 done; 1 an error, or a followed task that failed or was
// cancelled; 2 a mistake on the command line; 130 interrupted.
//
// The program is an app value (app.go) whose commands are built in one
// file each; the screens are the Bubble Tea models of package tui.
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
