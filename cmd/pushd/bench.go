package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pushd/push/bench"
)

type benchOptions struct {
	opts      bench.Options
	transport string
	serverCmd string
	json      bool
}

func newBenchCmd() *cobra.Command {
	o := benchOptions{opts: bench.DefaultOptions()}
	d := o.opts
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a pushd: connect subscribers, publish, report throughput, latency and losses",
		Long: `bench connects --subscribers to one room over --transport, learns the room's
cursor first and subscribes from it, publishes --messages through --publishers
(paced to --rate), and waits until every subscriber has every message. It
reports deliveries per second, latency from send to receipt (p50, p99, max),
messages lost, duplicated or out of order, reconnects, and memory per
connection. It exits with an error if any acknowledged message was lost,
duplicated or reordered.

Without --target it starts a pushd in this process on 127.0.0.1 (memory store,
no limits); its memory per connection then counts the bench's own clients too.
With --target, give --pid of that server to measure its resident memory, and
start it without limits (--publish-rate 0 --max-conns-per-ip 0
--max-conns-per-user 0 --max-long-polls-per-ip 0). Latency compares clocks of
this process, so run the bench on the server's machine.

The messages go to the room --room (default "bench") and stay in the target's
store like any room's, up to its --history: pushd has no way to delete a room.
Runs reuse the room, and each reads only its own messages; give runs at the
same time rooms of their own, as they would slow each other down.

--target takes several nodes of one cluster (comma-separated or repeated): the
subscribers are spread over them in turn, and the publishers post to the first
unless --publish-to names another.

With --server-cmd the bench starts the --target server itself (the command is
split at spaces, without quoting; its output goes to standard error), measures
its memory, and stops it with SIGTERM at the end. --restart-after N then
restarts it once N messages are acknowledged, as a deploy would: the
subscribers reconnect all at once from their cursors, the publishers send what
failed again with the same message ids, and the report says how long the
server was away, how long after it accepted again every subscriber was back,
and whether anything was lost or doubled. Give the server a store that
outlives it (--data DIR, or --nats).`,
		Example: `  pushd bench
  pushd bench --transport sse --subscribers 5000 --messages 200 --rate 100
  pushd bench --transport ws --ws-subprotocol pushd.batch.v1 --size 1024 --json
  pushd bench --target http://127.0.0.1:8080 --pid "$(pgrep -n pushd)"
  pushd bench --target http://127.0.0.1:8081,http://127.0.0.1:8082 --subscribers 10000
  pushd bench --target http://127.0.0.1:8080 --messages 200 --rate 20 --restart-after 100 \
    --server-cmd "pushd serve --addr 127.0.0.1:8080 --data /tmp/storm --publish-rate 0 --max-conns-per-ip 0"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.opts.Targets, "target", nil, "base URL of a running pushd, e.g. http://127.0.0.1:8080, or several nodes of one cluster (comma-separated or repeated) to spread the subscribers over in turn (default: start one in this process)")
	f.StringVar(&o.opts.PublishTo, "publish-to", "", "base URL the publishers post to, when not --target: another node of the same cluster, to measure delivery across nodes")
	f.IntVar(&o.opts.PID, "pid", 0, "process id of the --target server, to measure its resident memory per connection (Linux)")
	f.StringVar(&o.serverCmd, "server-cmd", "", "command of the --target server, which the bench then starts, measures and stops itself (split at spaces)")
	f.IntVar(&o.opts.RestartAfter, "restart-after", 0, "with --server-cmd, restart the server once this many messages are acknowledged, and measure how the subscribers come back")
	f.StringVar(&o.transport, "transport", string(d.Transport), "how subscribers receive: ws, sse or longpoll")
	f.StringVar(&o.opts.WSSubprotocol, "ws-subprotocol", "", "WebSocket subprotocol to ask for: pushd.batch.v1 packs several events per message")
	f.IntVar(&o.opts.Subscribers, "subscribers", d.Subscribers, "subscribers to connect")
	f.IntVar(&o.opts.Messages, "messages", d.Messages, "messages to publish, all publishers together")
	f.IntVar(&o.opts.Publishers, "publishers", d.Publishers, "publishers posting at once")
	f.Float64Var(&o.opts.Rate, "rate", d.Rate, "messages per second, all publishers together (0: as fast as the publishers go)")
	f.IntVar(&o.opts.Size, "size", d.Size, "bytes of each message's text (a header of about 40 bytes, then padding)")
	f.IntVar(&o.opts.Stall, "stall", d.Stall, "subscribers that stop reading for --stall-for at their first message")
	f.DurationVar(&o.opts.StallFor, "stall-for", d.StallFor, "how long stalled subscribers stop reading")
	f.StringVar(&o.opts.Room, "room", d.Room, "room to publish to and subscribe to; it stays in the target's store")
	f.DurationVar(&o.opts.Timeout, "timeout", d.Timeout, "bound on the whole run")
	f.DurationVar(&o.opts.Drain, "drain", d.Drain, "after publishing, give up on missing deliveries once none has arrived for this long")
	f.IntVar(&o.opts.ConnectConcurrency, "connect-concurrency", d.ConnectConcurrency, "subscribers connecting at once")
	f.BoolVar(&o.json, "json", false, "print one JSON line instead of the table")
	return cmd
}

func (o *benchOptions) run(cmd *cobra.Command) error {
	t, err := bench.ParseTransport(o.transport)
	if err != nil {
		return flagError(err)
	}
	o.opts.Transport = t
	o.opts.ServerCommand = strings.Fields(o.serverCmd)
	o.opts.ServerOutput = cmd.ErrOrStderr()
	o.opts.Progress = cmd.ErrOrStderr()
	rep, err := bench.Run(cmd.Context(), o.opts)
	if err != nil {
		return flagError(err)
	}
	if err := o.print(cmd.OutOrStdout(), rep); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return rep.Check()
}

func (o *benchOptions) print(w io.Writer, rep *bench.Report) error {
	if !o.json {
		return rep.WriteText(w)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// flagError names the flag of an option the bench refused, as a usage
// error.
func flagError(err error) error {
	var oerr *bench.OptionError
	if errors.As(err, &oerr) {
		return usagef("--%s %s: %s", oerr.Option, oerr.Value, oerr.Problem)
	}
	return err
}
