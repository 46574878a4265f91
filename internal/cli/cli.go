// Package cli is what pushd and pushtui share on their command lines: the
// exit codes, usage errors, and the one line a program prints for the
// error its command ended with.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1   // an error while running
	ExitUsage       = 2   // a mistake on the command line: a flag, its value or an argument
	ExitInterrupted = 130 // stopped by a signal (Ctrl+C) before the end
)

// usageError is a mistake on the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// Usage marks err as a mistake on the command line (nil stays nil).
// Commands return it for flag values they check themselves; a root
// command's SetFlagErrorFunc returns it for cobra's flag errors.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// Usagef is fmt.Errorf for mistakes on the command line.
func Usagef(format string, args ...any) error {
	return Usage(fmt.Errorf(format, args...))
}

// IsUsage reports whether err is a mistake on the command line: marked by
// Usage, or one of cobra's own checks of arguments and flag groups.
func IsUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue) || isCobraUsage(err)
}

// cobraUsage are the starts of the messages of cobra's checks that do not
// go through the flag error function: an unknown command (cobra.NoArgs,
// or no such subcommand), the argument counts of cobra.ExactArgs and
// cobra.MinimumNArgs, and flag groups such as MarkFlagsMutuallyExclusive.
// Flag parsing errors ("unknown flag", a bad value) reach the flag error
// function, which marks them with Usage.
var cobraUsage = []string{"unknown command ", "accepts ", "requires at least ", "if any flags in the group "}

// isCobraUsage recognises the errors of cobra's checks by their message,
// which cobra returns unwrapped.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range cobraUsage {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// ExitError ends the program with Code after printing Msg, if any: for an
// outcome that is not an error to explain, such as a followed task that
// failed.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// Reporter turns the error a program's command ended with into its exit
// code and the one line it prints on standard error.
type Reporter struct {
	// Program starts every line: "pushd: ...".
	Program string
	// W is where the line goes (standard error).
	W io.Writer
	// Explain returns the line for an error while running; nil prints
	// err.Error().
	Explain func(error) string
}

// Exit prints the line for err, if there is something to say, and returns
// the exit code: ExitOK for nil; an *ExitError's own code; ExitUsage for
// a mistake on the command line, whose line points at help's --help
// ("pushd serve"; "" is the program); ExitInterrupted, silently, when the
// command's context was cancelled; else ExitFailed.
func (r Reporter) Exit(err error, help string) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Msg != "" {
			fmt.Fprintf(r.W, "%s: %s\n", r.Program, ee.Msg)
		}
		return ee.Code
	}
	if IsUsage(err) {
		if help == "" {
			help = r.Program
		}
		fmt.Fprintf(r.W, "%s: %s (see %s --help)\n", r.Program, UsageLine(err.Error()), help)
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	msg := err.Error()
	if r.Explain != nil {
		msg = r.Explain(err)
	}
	fmt.Fprintf(r.W, "%s: %s\n", r.Program, msg)
	return ExitFailed
}

// UsageLine puts cobra's messages on one line: `unknown command "serv"
// for "pushd"; did you mean serve?`.
func UsageLine(msg string) string {
	head, suggestions, found := strings.Cut(msg, "\n\nDid you mean this?\n")
	if !found {
		if !strings.Contains(msg, "\n") {
			return msg
		}
		return strings.Join(strings.Fields(msg), " ")
	}
	return strings.TrimSpace(head) + "; did you mean " + strings.Join(strings.Fields(suggestions), " or ") + "?"
}
