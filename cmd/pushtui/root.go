package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/internal/version"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// defaultServer is where pushd serve listens by default.
const defaultServer = "http://127.0.0.1:8080"

// requestTimeout bounds each request pushtui makes (not subscriptions).
const requestTimeout = 10 * time.Second

// globalOptions are the flags every command takes.
type globalOptions struct {
	server    string
	transport string
	user      string
	token     string
	tokenCmd  string
	ca        string
	noColor   bool
	plain     bool
	json      bool

	// userGiven reports whether --user was on the command line (rather
	// than the $USER default); tokenGiven the same of --token.
	userGiven, tokenGiven func() bool
}

func newRootCmd(a *app) *cobra.Command {
	o := &globalOptions{}
	root := &cobra.Command{
		Use:   "pushtui",
		Short: "A terminal client for pushd: chat rooms and live background tasks",
		Long: `pushtui is the terminal client of pushd: join a chat room and talk, see who
comes and goes, and watch background tasks progress live, over WebSocket,
Server-Sent Events or HTTP polling. It resumes after every dropped
connection without missing or repeating an event.

On a terminal it draws a screen; piped, or with --plain or --json, it prints
one line per event instead, for scripts.

Exit codes: 0 done; 1 an error, or a followed task that failed or was
cancelled; 2 a mistake on the command line; 130 interrupted.`,
		Example: `  pushtui chat --room lobby
  pushtui watch-progress
  pushtui watch-progress --task "$(pushtui task start --name build)"
  pushtui send --room lobby "deploy finished"
  pushtui chat --room ops --json | jq -r 'select(.type == "message") | "\(.user): \(.text)"'`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return o.prepare(cmd.Context(), a, cmd)
		},
	}
	root.SetVersionTemplate("pushtui {{.Version}}\n")
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.Usage(err) })

	f := root.PersistentFlags()
	f.StringVar(&o.server, "server", envOr(a.getenv("PUSH_SERVER"), defaultServer), "pushd's address (env PUSH_SERVER)")
	f.StringVar(&o.transport, "transport", "auto", "how to receive events: ws, sse, longpoll, poll, or auto (ws, falling back to sse, then longpoll)")
	f.StringVar(&o.user, "user", a.getenv("USER"), "who you are in rooms (default: the token's user with --token, else $USER)")
	f.StringVar(&o.token, "token", a.getenv("PUSH_TOKEN"), "bearer token for servers that need one (env PUSH_TOKEN; pushd token mints one)")
	f.StringVar(&o.tokenCmd, "token-cmd", a.getenv("PUSH_TOKEN_CMD"), "command (run with sh -c) that prints a token; run at start and again whenever the server says the token expired (env PUSH_TOKEN_CMD)")
	f.StringVar(&o.ca, "ca", a.getenv("PUSH_CA"), "PEM file of a CA to trust for https:// and wss:// servers, besides the system's (env PUSH_CA)")
	f.BoolVar(&o.noColor, "no-color", a.getenv("NO_COLOR") != "", "draw without colours (also when NO_COLOR is set)")
	f.BoolVar(&o.plain, "plain", false, "print one line per event instead of drawing a screen (the default when output is not a terminal)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per event or result")
	o.userGiven = func() bool { return f.Changed("user") }
	o.tokenGiven = func() bool { return f.Changed("token") }
	_ = root.RegisterFlagCompletionFunc("transport", cobra.FixedCompletions(
		[]string{"auto\tws, then sse, then longpoll", "ws\tWebSocket", "sse\tServer-Sent Events", "longpoll\tHTTP long polling", "poll\tHTTP short polling"},
		cobra.ShellCompDirectiveNoFileComp))
	root.MarkFlagsMutuallyExclusive("plain", "json")

	root.AddCommand(
		newChatCmd(a, o),
		newWatchProgressCmd(a, o),
		newSendCmd(a, o),
		newTaskCmd(a, o),
		newVersionCmd(a),
	)
	return root
}

// envOr returns v, or def when v is empty.
func envOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// client returns a client for the server the flags name.
func (o *globalOptions) client(a *app) (*client.Client, error) {
	if err := o.checkUser(); err != nil {
		return nil, err
	}
	server := strings.TrimSpace(o.server)
	if server == "" {
		return nil, cli.Usagef("--server is empty; give pushd's address, such as %s", defaultServer)
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	opts := []client.Option{client.WithHTTPClient(a.hc), client.WithRequestTimeout(requestTimeout)}
	if o.user != "" {
		opts = append(opts, client.WithUser(o.user))
	}
	opts = append(opts, o.tokenOptions()...)
	a.server = server
	c, err := client.New(server, opts...)
	if err != nil {
		// "client: server URL "…": why" or "client: server URL "…" has no host"
		why := strings.TrimPrefix(err.Error(), "client: ")
		why = strings.TrimLeft(strings.TrimPrefix(why, fmt.Sprintf("server URL %q", server)), ": ")
		return nil, cli.Usagef("--server %q: %s; give an address such as %s", o.server, why, defaultServer)
	}
	return c, nil
}

// checkUser settles who the commands act as. With a token the server acts
// as the token's user and refuses any other name, so the token's user is
// the default over $USER, and a --user that is not it is a mistake said at
// once. The token is read, not verified (only the server has the secret);
// one that cannot be read is a mistake said first, whatever the user.
func (o *globalOptions) checkUser() error {
	token := strings.TrimSpace(o.token)
	sub := ""
	if token != "" {
		var err error
		if sub, err = client.TokenUser(token); err != nil {
			from := "PUSH_TOKEN"
			switch {
			case o.tokenCmd != "":
				from = "--token-cmd"
			case o.tokenGiven != nil && o.tokenGiven():
				from = "--token"
			}
			why := strings.TrimPrefix(err.Error(), "token: ")
			return cli.Usagef("%s: the token is malformed: %s; pass it whole, as pushd token printed it", from, why)
		}
	}
	explicit := o.userGiven != nil && o.userGiven()
	if explicit && strings.TrimSpace(o.user) == "" {
		return cli.Usagef("--user is empty: give a name, or leave --user out (the default is the token's user, else $USER)")
	}
	if token == "" {
		return nil
	}
	if explicit && o.user != sub {
		return cli.Usagef("--user %s, but the token is for %s and the server would refuse any other name: leave out --user, or pass --user %s", o.user, sub, sub)
	}
	o.user = sub
	return nil
}

// subscriber returns, for a command that subscribes, the client and the
// transport its subscriptions take (--transport).
func (o *globalOptions) subscriber(a *app) (*client.Client, client.Transport, error) {
	tr, err := client.ParseTransport(o.transport)
	if err != nil {
		return nil, "", cli.Usagef("--transport %q: use auto, ws, sse, longpoll or poll", o.transport)
	}
	c, err := o.client(a)
	return c, tr, err
}

// needUser checks --user for commands that act as someone.
func (o *globalOptions) needUser() error {
	if err := o.checkUser(); err != nil {
		return err
	}
	if o.user == "" {
		return cli.Usagef("no user name: pass --user NAME (USER is not set)")
	}
	if err := protocol.ValidateName("user", o.user); err != nil {
		return cli.Usagef("--user %q: use 1 to %d of A-Z a-z 0-9 . _ -", o.user, protocol.MaxNameLen)
	}
	return nil
}

// screen reports whether to draw a screen rather than print lines.
func (o *globalOptions) screen(a *app) bool {
	return !o.plain && !o.json && a.interactive()
}

// styles returns the screens' styles: without colour (bold, faint and
// reverse only) with --no-color or NO_COLOR.
func (o *globalOptions) styles(a *app) *tui.Styles {
	if o.noColor || a.getenv("NO_COLOR") != "" {
		return tui.MonoStyles(lipgloss.NewRenderer(a.out))
	}
	return tui.NewStyles(lipgloss.NewRenderer(a.out))
}

// common is what every screen's config shares, from the flags.
func (o *globalOptions) common(a *app, c *client.Client, tr client.Transport) tui.Common {
	return tui.Common{Server: c.BaseURL(), Transport: string(tr), Styles: o.styles(a), Timeout: requestTimeout}
}

// maxBackoff caps the wait between reconnects: a person is watching, and a
// restarted server should be back on screen within seconds.
const maxBackoff = 5 * time.Second

// startupWait bounds how long a screen waits for its first connection
// before it is drawn (it then shows the connection's progress itself).
const startupWait = 5 * time.Second
