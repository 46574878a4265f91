package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

func newTaskCmd(a *app, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Start, cancel, list and report on background tasks (for scripts)",
		Long: `Drive pushd's background tasks from scripts. Each command prints one line
per task (--json: one JSON object per task); "task start" prints just the
new task's ID, so it composes:

  id=$(pushtui task start --name nightly --total 500)
  pushtui watch-progress --task "$id"`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		newTaskStartCmd(a, g),
		newTaskCancelCmd(a, g),
		newTaskListCmd(a, g),
		newTaskGetCmd(a, g),
		newTaskReportCmd(a, g),
	)
	return cmd
}

type taskStartOptions struct {
	kind      string
	name      string
	total     int64
	interval  time.Duration
	failAt    int64
	room      string
	private   bool
	unwatched time.Duration
	key       string
}

func newTaskStartCmd(a *app, g *globalOptions) *cobra.Command {
	o := &taskStartOptions{}
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start a task and print its ID",
		Long: `Start a background task and print its ID. The demo kind is simulated work
(--total steps of --interval each, failing at --fail-at if given); the
external kind is work done elsewhere that reports with "task report".

The task is yours: only you (and admins) may cancel it or report on it.
--room shows it only to those who may use that room (and in its chat),
--private only to you; otherwise everyone sees it. --cancel-unwatched
has the server cancel it once nobody has watched it (watch-progress, a
chat of its room, any subscription to it) for that long.

The start is sent with an idempotency key (--key, or a random one) and
sent again with it if it fails for a passing reason: the task starts once.`,
		Example: `  pushtui task start --name try-it
  pushtui task start --name flaky --total 20 --fail-at 12
  pushtui task start --kind external --name backup --total 40 --room ops
  pushtui watch-progress --task "$(pushtui task start --private --cancel-unwatched 30s)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, a, g)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kind, "kind", "demo", "kind of work: demo, external, or one the server registered")
	f.StringVar(&o.name, "name", "", "a name for people (default: the kind and --key, or the kind and the time)")
	f.Int64Var(&o.total, "total", 100, "units of work (demo: steps; external: what reports count to)")
	f.DurationVar(&o.interval, "interval", 50*time.Millisecond, "demo: time per step")
	f.Int64Var(&o.failAt, "fail-at", 0, "demo: fail at this step")
	f.StringVar(&o.room, "room", "", "show the task only to those who may use this room, and in its chat")
	f.BoolVar(&o.private, "private", false, "show the task only to you (and admins)")
	f.DurationVar(&o.unwatched, "cancel-unwatched", 0, "cancel the task once nobody has watched it for this long, from 1s to 24h (0: never)")
	f.StringVar(&o.key, "key", "", "the start's idempotency key: a start again with it (within the server's dedupe window) starts nothing and prints the same task (default: a random one)")
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"demo", "external"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// check refuses, before any request, what the server would refuse: the
// demo and external kinds' params out of range or not theirs, and a name
// that protocol.ValidateTaskName refuses.
func (o *taskStartOptions) check(f *pflag.FlagSet) error {
	if strings.TrimSpace(o.kind) == "" {
		return cli.Usagef("--kind is empty: give demo, external, or a kind the server registered")
	}
	switch o.kind {
	case "demo":
		if err := checkDemo("--total", o.total, "--interval", o.interval); err != nil {
			return err
		}
		if o.failAt < 0 || o.failAt > o.total {
			return cli.Usagef("--fail-at %d: give a step from 1 to --total (%d), or leave it out", o.failAt, o.total)
		}
	case "external":
		if o.total < 0 {
			return cli.Usagef("--total %d: give 0 or more units of work", o.total)
		}
		for _, name := range []string{"interval", "fail-at"} {
			if f.Changed(name) {
				return cli.Usagef("--%s is for demo tasks; an external task reports its own progress", name)
			}
		}
	}
	if protocol.ValidateTaskName(o.name) != nil {
		return cli.Usagef("--name: give printable text of at most %d bytes", protocol.MaxTaskNameBytes)
	}
	return o.checkScope(f)
}

// checkScope refuses, before any request, a scope, cancel_unwatched or
// key the server would refuse.
func (o *taskStartOptions) checkScope(f *pflag.FlagSet) error {
	if f.Changed("room") {
		if err := protocol.ValidateName("room", o.room); err != nil {
			return cli.Usagef("--room %q: use 1 to %d of A-Z a-z 0-9 . _ -", o.room, protocol.MaxNameLen)
		}
		if o.private {
			return cli.Usagef("--room and --private: a task shows in a room or privately, not both")
		}
	}
	if f.Changed("cancel-unwatched") && (o.unwatched < protocol.MinCancelUnwatched || o.unwatched > protocol.MaxCancelUnwatched) {
		return cli.Usagef("--cancel-unwatched %s: give a duration from %s to %s", o.unwatched,
			shortDuration(protocol.MinCancelUnwatched), shortDuration(protocol.MaxCancelUnwatched))
	}
	if f.Changed("key") && protocol.ValidateID("--key", o.key) != nil {
		return cli.Usagef("--key %q: use 1 to %d of A-Z a-z 0-9 . _ : -", o.key, protocol.MaxIDLen)
	}
	return nil
}

// checkDemo checks a demo task's steps and time per step as the server
// will (protocol.ValidateDemo), naming the flag that is out of bounds.
func checkDemo(totalFlag string, total int64, intervalFlag string, interval time.Duration) error {
	if protocol.ValidateDemo(total, protocol.DemoMinInterval) != nil {
		return cli.Usagef("%s %d: a demo task has 1 to %d steps", totalFlag, total, protocol.DemoMaxTotal)
	}
	if protocol.ValidateDemo(1, interval) != nil {
		return cli.Usagef("%s %s: a demo task's steps take from %s to %s each", intervalFlag, interval,
			shortDuration(protocol.DemoMinInterval), shortDuration(protocol.DemoMaxInterval))
	}
	return nil
}

// shortDuration writes d without trailing zero units: "1h", not "1h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// checkID refuses an empty task ID (what "$(pushtui task start ...)" gives
// when the start failed): the commands would otherwise act on every task,
// or on none, instead of failing.
func checkID(what, id string) error {
	if strings.TrimSpace(id) == "" {
		return cli.Usagef("%s is empty: give a task ID (pushtui task list shows them; did \"pushtui task start\" fail?)", what)
	}
	return nil
}

// checkIDs is checkID for the arguments of a command.
func checkIDs(ids []string) error {
	for _, id := range ids {
		if err := checkID("the task ID", id); err != nil {
			return err
		}
	}
	return nil
}

// taskClient checks the task IDs given, then returns the client.
func taskClient(a *app, g *globalOptions, ids []string) (*client.Client, error) {
	if err := checkIDs(ids); err != nil {
		return nil, err
	}
	return g.client(a)
}

func (o *taskStartOptions) run(cmd *cobra.Command, a *app, g *globalOptions) error {
	if err := o.check(cmd.Flags()); err != nil {
		return err
	}
	c, err := g.client(a)
	if err != nil {
		return err
	}
	spec := client.TaskSpec{Kind: o.kind, Name: o.name, Params: map[string]any{},
		Room: o.room, Private: o.private, CancelUnwatched: o.unwatched, Key: o.key}
	if spec.Name == "" {
		spec.Name = defaultTaskName(o.kind, o.key, a.now())
	}
	f := cmd.Flags()
	if f.Changed("total") || o.kind == "demo" {
		spec.Params["total"] = o.total
	}
	if f.Changed("interval") || o.kind == "demo" {
		spec.Params["interval"] = o.interval.String()
	}
	if f.Changed("fail-at") {
		spec.Params["fail_at"] = o.failAt
	}
	t, err := c.StartTask(cmd.Context(), spec)
	if err != nil {
		return err
	}
	if g.json {
		a.printer(g).task(t)
		return nil
	}
	fmt.Fprintln(a.out, t.ID)
	return nil
}

// defaultTaskName names a task started without --name: after its kind
// and --key, so that a start repeated with its key asks for the same task
// (the server refuses a key used for another), or else after its kind and
// the time, "demo-150405".
func defaultTaskName(kind, key string, now time.Time) string {
	if key != "" {
		return kind + "-" + key
	}
	return kind + "-" + now.Format("150405")
}

func newTaskCancelCmd(a *app, g *globalOptions) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "cancel ID...",
		Short: "Cancel tasks",
		Long: `Ask the server to cancel tasks. A task ends as cancelled soon after, not
at once: each line says "cancelling" and the task as it was then; with
--wait it waits until each has ended and prints how.`,
		Example:           "  pushtui task cancel t42\n  pushtui task cancel --wait t42 t43",
		Args:              needIDs("task cancel", false),
		ValidArgsFunction: completeTaskIDs(a, g, true),
		RunE: func(cmd *cobra.Command, ids []string) error {
			c, err := taskClient(a, g, ids)
			if err != nil {
				return err
			}
			p := a.printer(g)
			for _, id := range ids {
				t, err := c.CancelTask(cmd.Context(), id)
				if err != nil {
					return err
				}
				p.cancelling(t)
				if !wait || t.State.Final() {
					continue
				}
				if t, err = finalState(cmd.Context(), c, id); err != nil {
					return err
				}
				p.task(t)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until each task has ended, and print how it ended")
	return cmd
}

// finalState follows the task's events until its final one and returns
// the task as it ended.
func finalState(ctx context.Context, c *client.Client, id string) (*protocol.Task, error) {
	sub := c.Subscribe(ctx, client.Task(id), client.SubscribeOptions{MaxBackoff: maxBackoff})
	defer sub.Close()
	var last *protocol.Task
	for ev := range sub.Events() {
		if ev.Task != nil {
			last = ev.Task
		}
	}
	if last != nil && last.State.Final() {
		return last, nil
	}
	if err := sub.Err(); err != nil {
		return nil, err
	}
	return c.GetTask(ctx, id)
}

// needIDs checks a command's task ids are there: at least one, or with
// one exactly one; its errors name the command and what is missing.
func needIDs(what string, one bool) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return cli.Usagef("%s needs a task id (pushtui task list shows them)", what)
		case one && len(args) > 1:
			return cli.Usagef("%s takes one task id, not %d", what, len(args))
		}
		return nil
	}
}

func newTaskGetCmd(a *app, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:               "get ID",
		Short:             "Show one task",
		Args:              needIDs("task get", true),
		ValidArgsFunction: completeTaskIDs(a, g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := taskClient(a, g, args)
			if err != nil {
				return err
			}
			t, err := c.GetTask(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			a.printer(g).task(t)
			return nil
		},
	}
}

func newTaskListCmd(a *app, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the tasks, newest first",
		Long: `List the tasks the server keeps, newest first: a table on a terminal, one
line per task when piped or with --plain, one JSON object per task with
--json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(a)
			if err != nil {
				return err
			}
			ts, err := c.ListTasks(cmd.Context())
			if err != nil {
				return err
			}
			if g.json || g.plain || !a.interactive() {
				p := a.printer(g)
				for i := range ts {
					p.task(&ts[i])
				}
				return nil
			}
			return writeTaskTable(a, ts)
		},
	}
}

// writeTaskTable prints tasks as a table for people.
func writeTaskTable(a *app, ts []protocol.Task) error {
	if len(ts) == 0 {
		fmt.Fprintln(a.out, "no tasks; start one with: pushtui task start")
		return nil
	}
	w := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSTATE\tPROGRESS\tDONE/TOTAL\tCREATED")
	now := a.now()
	for i := range ts {
		t := &ts[i]
		v := tui.TaskView{Task: *t}
		count := fmt.Sprint(t.Done)
		if t.Total > 0 {
			count = fmt.Sprintf("%d/%d", t.Done, t.Total)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%3.0f%%\t%s\t%s ago\n", t.ID, oneLine(t.Name), t.State, v.Fraction()*100, count,
			now.Sub(t.Created).Round(time.Second))
	}
	return w.Flush()
}

// oneLine keeps a name on its line in a table.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

type taskReportOptions struct {
	done    int64
	total   int64
	percent float64
	message string
	state   string
}

func newTaskReportCmd(a *app, g *globalOptions) *cobra.Command {
	o := &taskReportOptions{}
	cmd := &cobra.Command{
		Use:   "report ID",
		Short: "Report progress of an external task",
		Long: `Report how far an external task got: --done (of --total) or --percent, an
optional --message, and finally --state succeeded or --state failed.`,
		Example: `  pushtui task report t42 --done 7 --message "copied 7 files"
  pushtui task report t42 --state succeeded`,
		Args:              needIDs("task report", true),
		ValidArgsFunction: completeTaskIDs(a, g, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, a, g, args[0])
		},
	}
	f := cmd.Flags()
	f.Int64Var(&o.done, "done", 0, "units of work done so far")
	f.Int64Var(&o.total, "total", 0, "units of work in all (when it was not known at the start)")
	f.Float64Var(&o.percent, "percent", 0, "progress as a percentage, for work not counted in units")
	f.StringVar(&o.message, "message", "", "what is happening now")
	f.StringVar(&o.state, "state", "", "succeeded or failed: ends the task")
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"succeeded", "failed"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *taskReportOptions) run(cmd *cobra.Command, a *app, g *globalOptions, id string) error {
	if err := checkIDs([]string{id}); err != nil {
		return err
	}
	f := cmd.Flags()
	if err := o.check(f); err != nil {
		return err
	}
	var p client.Progress
	if f.Changed("done") {
		p.Done = &o.done
	}
	if f.Changed("total") {
		p.Total = &o.total
	}
	if f.Changed("percent") {
		p.Percent = &o.percent
	}
	p.Message = o.message
	switch protocol.TaskState(o.state) {
	case "":
	case protocol.TaskSucceeded, protocol.TaskFailed:
		p.State = protocol.TaskState(o.state)
	default:
		return cli.Usagef("--state %q: use succeeded or failed", o.state)
	}
	if p.Done == nil && p.Total == nil && p.Percent == nil && p.Message == "" && p.State == "" {
		return cli.Usagef("nothing to report: give --done, --total, --percent, --message or --state")
	}
	c, err := g.client(a)
	if err != nil {
		return err
	}
	t, err := c.ReportProgress(cmd.Context(), id, p)
	if err != nil {
		return err
	}
	a.printer(g).task(t)
	return nil
}

// check refuses, before any request, a report the server would refuse or
// take only in part.
func (o *taskReportOptions) check(f *pflag.FlagSet) error {
	done, total, percent := f.Changed("done"), f.Changed("total"), f.Changed("percent")
	switch {
	case done && percent:
		// The server would take the percentage from --percent and leave
		// --done's out of it.
		return cli.Usagef("--done and --percent: give one of them; the task's progress is counted in units of --total or in percent")
	case done && o.done < 0:
		return cli.Usagef("--done %d: give 0 or more", o.done)
	case total && o.total < 0:
		return cli.Usagef("--total %d: give 0 or more", o.total)
	case done && total && o.done > o.total:
		return cli.Usagef("--done %d is more than --total %d", o.done, o.total)
	case percent && !(o.percent >= 0 && o.percent <= 100):
		return cli.Usagef("--percent %g: give 0 to 100", o.percent)
	case protocol.ValidateTaskMessage(o.message) != nil:
		return cli.Usagef("--message: give UTF-8 text of at most %d bytes", protocol.MaxTaskMessageBytes)
	}
	return nil
}

// completeTaskIDs completes task IDs from the server, the name as the
// description; liveOnly offers only queued and running tasks.
func completeTaskIDs(a *app, g *globalOptions, liveOnly bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		c, err := g.client(a)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		ts, err := c.ListTasks(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, t := range ts {
			if liveOnly && t.State.Final() {
				continue
			}
			out = append(out, t.ID+"\t"+oneLine(t.Name)+" ("+string(t.State)+")")
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
