package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spf13/cobra"

	"github.com/pushd/push/internal/cli"
)

// newRoot is a command tree with each of cobra's checks that ends in a
// usage error: arguments of a leaf, an exact and a minimum count, flags
// that exclude each other, and flags parsed through the flag error
// function.
func newRoot() *cobra.Command {
	run := func(*cobra.Command, []string) error { return nil }
	root := &cobra.Command{Use: "prog", SilenceUsage: true, SilenceErrors: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.Usage(err) })
	root.PersistentFlags().Bool("plain", false, "")
	root.PersistentFlags().Bool("json", false, "")
	root.MarkFlagsMutuallyExclusive("plain", "json")
	leaf := &cobra.Command{Use: "leaf", Args: cobra.NoArgs, RunE: run}
	leaf.Flags().Duration("every", 0, "")
	root.AddCommand(leaf,
		&cobra.Command{Use: "one", Args: cobra.ExactArgs(1), RunE: run},
		&cobra.Command{Use: "some", Args: cobra.MinimumNArgs(1), RunE: run},
	)
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	return root
}

func TestCobraMistakesAreUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"leaff"}, `prog: unknown command "leaff" for "prog"; did you mean leaf? (see prog --help)`},
		{[]string{"leaf", "x"}, `prog: unknown command "x" for "prog leaf" (see prog leaf --help)`},
		{[]string{"one"}, "prog: accepts 1 arg(s), received 0 (see prog one --help)"},
		{[]string{"some"}, "prog: requires at least 1 arg(s), only received 0 (see prog some --help)"},
		{[]string{"leaf", "--plain", "--json"}, "prog: if any flags in the group [plain json] are set none of the others can be; [json plain] were all set (see prog leaf --help)"},
		{[]string{"leaf", "--nope"}, "prog: unknown flag: --nope (see prog leaf --help)"},
		{[]string{"leaf", "-x"}, "prog: unknown shorthand flag: 'x' in -x (see prog leaf --help)"},
		{[]string{"leaf", "--every", "soon"}, `prog: invalid argument "soon" for "--every" flag: time: invalid duration "soon" (see prog leaf --help)`},
		{[]string{"leaf", "--every"}, "prog: flag needs an argument: --every (see prog leaf --help)"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			root := newRoot()
			root.SetArgs(tc.args)
			cmd, err := root.ExecuteC()
			if err == nil {
				t.Fatal("no error")
			}
			var w bytes.Buffer
			code := cli.Reporter{Program: "prog", W: &w}.Exit(err, cmd.CommandPath())
			if code != cli.ExitUsage || w.String() != tc.want+"\n" {
				t.Fatalf("exit %d, %q; want exit %d, %q", code, w.String(), cli.ExitUsage, tc.want)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	explain := func(err error) string { return "explained: " + err.Error() }
	cases := []struct {
		name string
		err  error
		code int
		out  string
	}{
		{"nil", nil, cli.ExitOK, ""},
		{"runtime", errors.New("boom"), cli.ExitFailed, "prog: explained: boom\n"},
		{"usage", cli.Usagef("--n %d: give 1 or more", 0), cli.ExitUsage, "prog: --n 0: give 1 or more (see prog --help)\n"},
		{"wrapped usage", fmt.Errorf("check: %w", cli.Usage(errors.New("bad"))), cli.ExitUsage, "prog: check: bad (see prog --help)\n"},
		{"interrupted", fmt.Errorf("open: %w", context.Canceled), cli.ExitInterrupted, ""},
		{"exit error", &cli.ExitError{Code: cli.ExitFailed}, cli.ExitFailed, ""},
		{"exit error with a message", &cli.ExitError{Code: 3, Msg: "three"}, 3, "prog: three\n"},
		// A runtime error that says "accepts" is not cobra's.
		{"not cobra's", errors.New("the server accepts no more"), cli.ExitFailed, "prog: explained: the server accepts no more\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w bytes.Buffer
			if code := (cli.Reporter{Program: "prog", W: &w, Explain: explain}).Exit(tc.err, ""); code != tc.code || w.String() != tc.out {
				t.Fatalf("exit %d, %q; want %d, %q", code, w.String(), tc.code, tc.out)
			}
		})
	}
	if cli.Usage(nil) != nil {
		t.Fatal("Usage(nil) is not nil")
	}
	var w bytes.Buffer
	if code := (cli.Reporter{Program: "prog", W: &w}).Exit(errors.New("boom"), ""); code != cli.ExitFailed || w.String() != "prog: boom\n" {
		t.Fatalf("without Explain: exit %d, %q", code, w.String())
	}
}

func TestUsageLine(t *testing.T) {
	cases := map[string]string{
		"one line": "one line",
		"unknown command \"serv\" for \"pushd\"\n\nDid you mean this?\n\tserve\n": `unknown command "serv" for "pushd"; did you mean serve?`,
		"two\n\nDid you mean this?\n\ta\n\tb\n":                                   "two; did you mean a or b?",
		"several\n  lines":                                                        "several lines",
	}
	for in, want := range cases {
		if got := cli.UsageLine(in); got != want {
			t.Errorf("UsageLine(%q) = %q, want %q", in, got, want)
		}
	}
}
