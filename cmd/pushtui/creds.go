package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/version"
)

// tokenCmdTimeout bounds one run of --token-cmd.
const tokenCmdTimeout = 30 * time.Second

// prepare runs before every command but version: it trusts --ca for
// https and wss, and takes the first token from --token-cmd.
func (o *globalOptions) prepare(ctx context.Context, a *app, cmd *cobra.Command) error {
	if cmd.Name() == "version" {
		return nil
	}
	if o.ca != "" {
		pool, err := client.RootsWithFile(o.ca)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		tr, ok := a.hc.Transport.(*http.Transport)
		if !ok {
			return fmt.Errorf("--ca: the HTTP client has no transport to set roots on")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if o.tokenCmd != "" {
		tok, err := o.runTokenCmd(ctx)
		if err != nil {
			return err
		}
		o.token = tok
	}
	return nil
}

// runTokenCmd runs --token-cmd with sh and returns what it printed, the
// token.
func (o *globalOptions) runTokenCmd(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, tokenCmdTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", "-c", o.tokenCmd)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		why := strings.TrimSpace(errOut.String())
		if why == "" {
			why = err.Error()
		}
		return "", fmt.Errorf("--token-cmd %q: %s", o.tokenCmd, why)
	}
	tok := strings.TrimSpace(out.String())
	if tok == "" {
		return "", fmt.Errorf("--token-cmd %q printed no token", o.tokenCmd)
	}
	return tok, nil
}

// tokenOptions are the client's options for the token: the one to start
// with, and with --token-cmd the command as the source of the next ones.
func (o *globalOptions) tokenOptions() []client.Option {
	var opts []client.Option
	if o.token != "" {
		opts = append(opts, client.WithToken(o.token))
	}
	if o.tokenCmd != "" {
		opts = append(opts, client.WithTokenSource(o.runTokenCmd))
	}
	return opts
}

// newVersionCmd prints what pushtui was built from; pushtui --version
// prints the same.
func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version pushtui was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(a.out, "pushtui "+version.Get().String())
			return err
		},
	}
}
