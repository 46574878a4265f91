package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

type watchOptions struct {
	task         string
	demoTotal    int64
	demoInterval time.Duration
}

func newWatchProgressCmd(a *app, g *globalOptions) *cobra.Command {
	o := &watchOptions{}
	cmd := &cobra.Command{
		Use:   "watch-progress",
		Short: "Watch background tasks progress live",
		Long: `Without --task: every task, newest first, with its progress, rate and ETA.
Keys: up/down select, c cancels the selected task (y confirms), n starts a demo task,
q quits.

With --task ID: follows that one task and exits when it ends, 0 when it
succeeded and 1 when it failed or was cancelled, so scripts can wait on it.

Not on a terminal, or with --plain or --json, it prints one line per
progress event instead.`,
		Example: `  pushtui watch-progress
  pushtui watch-progress --task t42 && echo done
  pushtui watch-progress --task "$(pushtui task start --name build)" --plain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("task") {
				if err := checkID("--task", o.task); err != nil {
					return err
				}
			}
			return o.run(cmd.Context(), a, g)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.task, "task", "", "follow only this task and exit when it ends (0: succeeded, 1: failed or cancelled)")
	f.Int64Var(&o.demoTotal, "demo-total", 100, "steps of the demo tasks that n starts")
	f.DurationVar(&o.demoInterval, "demo-interval", 50*time.Millisecond, "time per step of the demo tasks that n starts")
	_ = cmd.RegisterFlagCompletionFunc("task", completeTaskIDs(a, g, false))
	return cmd
}

func (o *watchOptions) run(ctx context.Context, a *app, g *globalOptions) error {
	if err := checkDemo("--demo-total", o.demoTotal, "--demo-interval", o.demoInterval); err != nil {
		return err
	}
	c, tr, err := g.subscriber(a)
	if err != nil {
		return err
	}
	if o.task != "" {
		return o.follow(ctx, a, g, c, tr)
	}
	if _, err := c.ListTasks(ctx); err != nil {
		return err
	}
	f := tui.StartFeed(ctx, c, tui.FeedStream{Stream: client.Tasks(), Opts: client.SubscribeOptions{MaxBackoff: maxBackoff, Transport: tr}})
	defer f.Close()
	if !g.screen(a) {
		return printFeed(ctx, a.printer(g), f)
	}
	if err := f.Started(ctx, startupWait); err != nil {
		return err
	}
	m := tui.NewWatchModel(tui.WatchConfig{
		Common: g.common(a, c, tr),
		Conn:   &taskConn{Feed: f, c: c, demo: demoSpec{total: o.demoTotal, interval: o.demoInterval}},
	})
	err = a.runProgram(ctx, m, tea.WithAltScreen())
	return screenErr(ctx, err)
}

// printFeed prints every update until interrupted or the feed ends.
func printFeed(ctx context.Context, p *printer, f *tui.Feed) error {
	for u := range f.Updates() {
		p.update(u)
		if p.err != nil {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return f.Err()
}

// follow follows one task until it ends; the exit code says how.
func (o *watchOptions) follow(ctx context.Context, a *app, g *globalOptions, c *client.Client, tr client.Transport) error {
	// The cursor first, then the task: whatever happens in between comes
	// as events, so the end cannot slip through.
	cur, err := c.Cursor(ctx, client.Task(o.task))
	if err != nil {
		return err
	}
	sub := tui.FeedStream{Stream: client.Task(o.task), Opts: client.SubscribeOptions{MaxBackoff: maxBackoff, Transport: tr, Since: cur.String()}}
	if !g.screen(a) {
		return o.followPlain(ctx, a.printer(g), c, sub, cur)
	}
	f := tui.StartFeed(ctx, c, sub)
	defer f.Close()
	if err := f.Started(ctx, startupWait); err != nil {
		return err
	}
	m := tui.NewFollowModel(tui.FollowConfig{
		Common: g.common(a, c, tr),
		Conn:   &followConn{Feed: f, c: c, id: o.task},
		TaskID: o.task,
	})
	err = a.runProgram(ctx, m)
	if err := screenErr(ctx, err); err != nil {
		return err
	}
	t, err := m.Result()
	switch {
	case errors.Is(err, tui.ErrStopped):
		return &cli.ExitError{Code: cli.ExitInterrupted}
	case errors.Is(err, tui.ErrClosed):
		if ferr := f.Err(); ferr != nil {
			return ferr
		}
		return err
	case err != nil:
		return err
	}
	return outcome(t)
}

// followPlain prints the task as it is, then each of its events, until it
// ends.
func (o *watchOptions) followPlain(ctx context.Context, p *printer, c *client.Client, sub tui.FeedStream, cur protocol.Cursor) error {
	snapshot := func(at protocol.Cursor) (*protocol.Task, error) {
		t, err := c.GetTask(ctx, o.task)
		if err != nil {
			return nil, err
		}
		// The task as it is now is where the stream stands: print it as a
		// progress event at that cursor.
		p.event(&protocol.Event{Seq: at.Seq, Epoch: at.Epoch, Stream: protocol.TasksStream, Type: protocol.TypeProgress, Time: taskTime(t), Task: t})
		return t, nil
	}
	t, err := snapshot(cur)
	if err != nil {
		return err
	}
	if t.State.Final() {
		return outcome(*t)
	}
	f := tui.StartFeed(ctx, c, sub)
	defer f.Close()
	for u := range f.Updates() {
		if u.Status != nil {
			p.status(u.Status)
			continue
		}
		e := u.Event
		p.event(e)
		if e.Type == protocol.TypeReset {
			// Events may be missing: ask for the task itself.
			if t, err = snapshot(e.Cursor()); err != nil {
				return err
			}
		} else if e.Task != nil && e.Task.ID == o.task {
			t = e.Task
		}
		if t.State.Final() {
			return outcome(*t)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := f.Err(); err != nil {
		return err
	}
	return fmt.Errorf("follow task %s: the connection closed before it ended", o.task)
}

// taskTime is when a task last changed, as far as the task says.
func taskTime(t *protocol.Task) time.Time {
	switch {
	case t.Finished != nil:
		return *t.Finished
	case t.Started != nil:
		return *t.Started
	}
	return t.Created
}

// outcome is the exit of a followed task: 0 when it succeeded, 1 when it
// failed or was cancelled.
func outcome(t protocol.Task) error {
	if t.State == protocol.TaskSucceeded {
		return nil
	}
	return &cli.ExitError{Code: cli.ExitFailed}
}
