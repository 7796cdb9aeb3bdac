package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/internal/buildinfo"
)

// Set at link time by the Makefile (-ldflags "-X main.version=...").
var (
	version = "dev"
	commit  = ""
)

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Example: `  whorl version
  whorl version --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := buildinfo.Current(version, commit)
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(b)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), b)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as a JSON object")
	return cmd
}
