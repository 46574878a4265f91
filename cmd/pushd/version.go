package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pushd/push/internal/version"
)

// newVersionCmd prints what the binary was built from; pushd --version
// prints the same.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version pushd was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "pushd "+version.Get().String())
			return err
		},
	}
}
