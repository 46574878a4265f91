package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // an error while running
	exitUsage  = 2 // a mistake on the command line: a flag, its value or an argument
)

const commandName = "pushd"

// errSilent is returned by commands that have already told the user.
var errSilent = errors.New("")

// usageError is a mistake on the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErr marks err as a mistake on the command line.
func usageErr(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// usagef is fmt.Errorf for mistakes on the command line.
func usagef(format string, args ...any) error {
	return usageErr(fmt.Errorf(format, args...))
}

// noArgs refuses positional arguments, as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	return usageErr(cobra.NoArgs(cmd, args))
}

// exitCode prints err (unless it is errSilent) on w and returns the exit
// code for it. cmd is the command that ran, for the hint to its help.
func exitCode(err error, cmd *cobra.Command, w io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errSilent) {
		return exitFailed
	}
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		path := commandName
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(w, "%s: %s (see %s --help)\n", commandName, usageLine(err.Error()), path)
		return exitUsage
	}
	fmt.Fprintf(w, "%s: %v\n", commandName, err)
	return exitFailed
}

// isCobraUsage recognises the errors of cobra's own checks that do not go
// through the commands here: an unknown command under pushd, and the
// arguments and flags of the commands cobra adds (help, completion).
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command ", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument ", "accepts ", "requires at least ", "requires at most ", "required flag(s) ", "if any flags in the group"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// usageLine puts cobra's messages on one line: `unknown command "serv"
// for "pushd"; did you mean serve?`.
func usageLine(msg string) string {
	head, suggestions, found := strings.Cut(msg, "\n\nDid you mean this?\n")
	if !found {
		if !strings.Contains(msg, "\n") {
			return msg
		}
		return strings.Join(strings.Fields(msg), " ")
	}
	return strings.TrimSpace(head) + "; did you mean " + strings.Join(strings.Fields(suggestions), " or ") + "?"
}
