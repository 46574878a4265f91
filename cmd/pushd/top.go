package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
	"github.com/pushd/push/tui/top"
)

// topOptions are top's flags.
type topOptions struct {
	server    string
	token     string
	transport string
	once      bool
	json      bool
	noColor   bool
}

// topTimeout bounds each request top makes (not its subscription).
const topTimeout = 10 * time.Second

func newTopCmd() *cobra.Command {
	o := topOptions{}
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Watch a running pushd: connections, rooms, subscribers falling behind, tasks, the store",
		Long: `top draws the live stats of a running pushd (of every node of a cluster):
connections by transport, the busiest rooms, the subscribers furthest behind,
tasks, how the store keeps up, and the process. It needs a token with the
admin right (pushd token --admin), or on a server without tokens to run on
the same machine. It reconnects by itself, across a restart of the server.

Keys: up/down select a room, enter shows its subscribers, s sorts by the next
column, r reverses, / filters, esc goes back, q quits.`,
		Example: `  pushd top
  pushd top --server http://10.0.0.5:8080 --token "$(pushd token --auth-secret-file secret --user ops --admin)"
  pushd top --once --json | jq '.streams[] | select(.max_lag > 1000)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", envOr(os.Getenv("PUSH_SERVER"), "http://127.0.0.1:8080"), "the pushd to watch (env PUSH_SERVER)")
	f.StringVar(&o.token, "token", os.Getenv("PUSH_TOKEN"), "a token with the admin right (env PUSH_TOKEN; pushd token --admin mints one)")
	f.StringVar(&o.transport, "transport", "auto", "how to receive the stats: ws, sse, longpoll, poll, or auto")
	f.BoolVar(&o.once, "once", false, "print one snapshot and exit (as text, or JSON with --json)")
	f.BoolVar(&o.json, "json", false, "print snapshots as JSON, one a line (with --once, one)")
	f.BoolVar(&o.noColor, "no-color", os.Getenv("NO_COLOR") != "", "draw without colours (also when NO_COLOR is set)")
	return cmd
}

// envOr returns v, or def when v is empty.
func envOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (o *topOptions) run(ctx context.Context, in io.Reader, out io.Writer) error {
	tr, err := client.ParseTransport(o.transport)
	if err != nil {
		return usagef("--transport %q: use auto, ws, sse, longpoll or poll", o.transport)
	}
	server := strings.TrimSpace(o.server)
	if server != "" && !strings.Contains(server, "://") {
		server = "http://" + server
	}
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	opts := []client.Option{client.WithHTTPClient(hc), client.WithRequestTimeout(topTimeout)}
	if o.token != "" {
		opts = append(opts, client.WithToken(strings.TrimSpace(o.token)))
	}
	c, err := client.New(server, opts...)
	if err != nil {
		return usagef("--server %q: %s", o.server, strings.TrimPrefix(err.Error(), "client: "))
	}
	switch {
	case o.once:
		return o.printOnce(ctx, c, out)
	case o.json:
		return printStats(ctx, c, tr, out)
	case !isTerminal(in) || !isTerminal(out):
		return usagef("top draws a screen, and this is not a terminal: use --once, or --json for a line a second")
	}
	return o.screen(ctx, c, tr, in, out)
}

// printOnce prints one snapshot: as JSON, or as the screen would show it
// on a terminal of this size (100×40 when not on one).
func (o *topOptions) printOnce(ctx context.Context, c *client.Client, out io.Writer) error {
	st, err := c.Stats(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(out).Encode(st)
	}
	w, h := 100, 40
	if f, ok := out.(*os.File); ok && term.IsTerminal(f.Fd()) {
		if tw, th, err := term.GetSize(f.Fd()); err == nil {
			w, h = tw, th
		}
	}
	cfg := top.Config{Common: tui.Common{Server: c.BaseURL(), Transport: "once"}}
	if !o.noColor && isTerminal(out) {
		cfg.Styles = tui.NewStyles(lipgloss.NewRenderer(out))
	}
	_, err = fmt.Fprintln(out, top.Render(cfg, st, w, h))
	return err
}

// printStats prints each snapshot of the stats stream as a line of JSON
// until ctx ends.
func printStats(ctx context.Context, c *client.Client, tr client.Transport, out io.Writer) error {
	sub := c.Subscribe(ctx, client.Stats(), client.SubscribeOptions{Transport: tr, MaxBackoff: topMaxBackoff})
	defer sub.Close()
	enc := json.NewEncoder(out)
	for ev := range sub.Events() {
		if ev.Stats == nil {
			continue
		}
		if err := enc.Encode(ev.Stats); err != nil {
			return err
		}
	}
	if err := sub.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// topMaxBackoff caps the wait between reconnects: someone is watching, and
// a restarted server should be back on screen within seconds.
const topMaxBackoff = 5 * time.Second

// screen runs the screen until q, or ctx ends.
func (o *topOptions) screen(ctx context.Context, c *client.Client, tr client.Transport, in io.Reader, out io.Writer) error {
	conn := watchStats(ctx, c, tr)
	defer conn.Close()
	// The screen is drawn once the first try has an outcome, or after a
	// few seconds; a refusal fails the command with one line instead.
	if err := conn.Started(ctx, 5*time.Second); err != nil {
		return err
	}
	styles := tui.NewStyles(lipgloss.NewRenderer(out))
	if o.noColor {
		styles = tui.MonoStyles(lipgloss.NewRenderer(out))
	}
	m := top.New(top.Config{Common: tui.Common{Server: c.BaseURL(), Transport: string(tr), Styles: styles, Timeout: topTimeout}, Conn: conn})
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen())
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// statsConn is the screen's link to the server: the stats stream, from
// the snapshots the server keeps, and requests for subscribers.
type statsConn struct {
	*tui.Feed
	c *client.Client
}

var _ top.Conn = (*statsConn)(nil)

// watchStats subscribes to the stats stream; Close stops it.
func watchStats(ctx context.Context, c *client.Client, tr client.Transport) *statsConn {
	stats := tui.FeedStream{Stream: client.Stats(), Opts: client.SubscribeOptions{Transport: tr, Since: "0", MaxBackoff: topMaxBackoff}}
	return &statsConn{Feed: tui.StartFeed(ctx, c, stats), c: c}
}

func (sc *statsConn) Subscribers(ctx context.Context, stream string) (*protocol.SubscriberList, error) {
	return sc.c.Subscribers(ctx, stream, subscribersShown)
}

// subscribersShown is how many subscribers of a stream the screen asks for.
const subscribersShown = 500

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(file.Fd())
}
