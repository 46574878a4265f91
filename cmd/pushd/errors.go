package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/pushd/push/internal/cli"
)

// The exit codes (see package cli), by the names the commands and their
// tests use.
const (
	exitOK    = cli.ExitOK
	exitUsage = cli.ExitUsage
)

// usageErr marks err as a mistake on the command line (cli.Usage).
func usageErr(err error) error { return cli.Usage(err) }

// usagef is fmt.Errorf for mistakes on the command line (cli.Usagef).
func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

// exitCode prints err on w as one line and returns the exit code for it.
// cmd is the command that ran, whose --help a usage error points at.
func exitCode(err error, cmd *cobra.Command, w io.Writer) int {
	help := ""
	if cmd != nil {
		help = cmd.CommandPath()
	}
	return cli.Reporter{Program: "pushd", W: w}.Exit(err, help)
}
