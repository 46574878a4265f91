package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/term"

	"github.com/pushd/push/internal/cli"
)

// app is pushtui as a value: its standard streams, environment and HTTP
// client, so tests run the whole program in-process.
type app struct {
	in     io.Reader
	out    io.Writer
	errOut io.Writer
	getenv func(string) string
	hc     *http.Client

	// interactive reports whether screens can be drawn: standard input and
	// output are terminals. Otherwise the commands print lines.
	interactive func() bool
	// size, when set, is the screen size told to programs whose output is
	// not a terminal (tests); a terminal tells its own.
	size *tea.WindowSizeMsg
	// now is the clock (tests fix it).
	now func() time.Time
	// server is the --server of the last run, for error messages.
	server string
}

// newApp returns pushtui on the given streams and environment.
func newApp(in io.Reader, out, errOut io.Writer, getenv func(string) string) *app {
	a := &app{
		in: in, out: out, errOut: errOut, getenv: getenv,
		hc:  &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		now: time.Now,
	}
	a.interactive = func() bool { return isTerminal(a.in) && isTerminal(a.out) }
	return a
}

// Run runs the command line args (without the program name).
func (a *app) Run(ctx context.Context, args []string) error {
	cmd := newRootCmd(a)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// Exit prints err as one line on standard error, when there is something
// to say, and returns the exit code for it.
func (a *app) Exit(err error) int {
	server := a.server
	if server == "" {
		server = defaultServer
	}
	explain := func(err error) string { return explain(err, server) }
	return cli.Reporter{Program: "pushtui", W: a.errOut, Explain: explain}.Exit(err, "")
}

// Close releases the app's idle connections.
func (a *app) Close() {
	a.hc.CloseIdleConnections()
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(file.Fd())
}

// runProgram runs a Bubble Tea program for m on the app's streams until
// it quits or ctx ends.
func (a *app) runProgram(ctx context.Context, m tea.Model, opts ...tea.ProgramOption) error {
	all := append([]tea.ProgramOption{tea.WithContext(ctx), tea.WithInput(a.in), tea.WithOutput(a.out)}, opts...)
	p := tea.NewProgram(m, all...)
	if a.size != nil && !isTerminal(a.out) {
		go p.Send(*a.size) // returns when the program reads it or ends
	}
	_, err := p.Run()
	return err
}
