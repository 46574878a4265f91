package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// printer writes what scripts read: one line per event or result on
// standard output, plain or JSON, and connection news as plain lines on
// standard error.
type printer struct {
	out    io.Writer
	errOut io.Writer
	json   bool
	err    error // the first write error: output gone (a closed pipe)
}

func (a *app) printer(g *globalOptions) *printer {
	return &printer{out: a.out, errOut: a.errOut, json: g.json}
}

// event prints an event.
func (p *printer) event(e *protocol.Event) {
	if p.json {
		p.jsonLine(e)
		return
	}
	p.line(tui.PlainEvent(e))
}

// task prints a task.
func (p *printer) task(t *protocol.Task) {
	if p.json {
		p.jsonLine(t)
		return
	}
	p.line(tui.PlainTask(t))
}

// cancelling prints a task whose cancel was asked: "cancelling <task>",
// or the task alone when it had ended already; with --json the task.
func (p *printer) cancelling(t *protocol.Task) {
	if p.json || t.State.Final() {
		p.task(t)
		return
	}
	p.line("cancelling " + tui.PlainTask(t))
}

// status tells standard error about connections made and lost. Not
// about the end of a subscription: the command returns its error, which is
// the one line printed at exit.
func (p *printer) status(s *tui.Status) {
	switch s.State {
	case client.StateConnecting, client.StateClosed:
		return
	}
	fmt.Fprintln(p.errOut, "pushtui:", tui.PlainStatus(s))
}

// update prints an update of a feed.
func (p *printer) update(u tui.Update) {
	switch {
	case u.Event != nil:
		p.event(u.Event)
	case u.Status != nil:
		p.status(u.Status)
	}
}

func (p *printer) line(s string) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintln(p.out, s)
}

func (p *printer) jsonLine(v any) {
	if p.err != nil {
		return
	}
	enc := json.NewEncoder(p.out)
	enc.SetEscapeHTML(false)
	p.err = enc.Encode(v)
}

// screenErr makes a screen's end into the command's error: nil when the
// user quit, the context's error when a signal ended it.
func screenErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled):
		return ctx.Err()
	}
	return fmt.Errorf("draw the screen: %w", err)
}
