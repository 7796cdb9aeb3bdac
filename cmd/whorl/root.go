package main

import (
	"sort"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the top-level subcommands; each
// subcommand's file adds itself in an init function (register), so the
// families of commands can grow in separate files without editing one list.
var commands []func() *cobra.Command

// benchCommands holds the constructors of the `whorl bench` subcommands.
var benchCommands []func() *cobra.Command

// register adds top-level subcommand constructors.
func register(fs ...func() *cobra.Command) { commands = append(commands, fs...) }

// registerBench adds `whorl bench` subcommand constructors.
func registerBench(fs ...func() *cobra.Command) { benchCommands = append(benchCommands, fs...) }

func init() { register(newVersionCmd, newBenchCmd) }

// newRootCmd builds the whole command tree.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "whorl",
		Short: "Distributed self-supervised (RotNet) pretraining on a raft-backed cluster",
		Long: `whorl pretrains image networks on the rotation task (Gidaris et al., ICLR 2018)
across gRPC workers that all-reduce gradients in a ring, coordinated by a raft
group, then fine-tunes on a small labeled set and reports the gain over a
supervised baseline.

Every flag can also be set in a YAML file given with --config (keys are flag
names) or in the environment as WHORL_<FLAG> (dashes as underscores).`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: loadConfig,
	}
	root.PersistentFlags().String("config", "", "YAML configuration file whose keys are flag names")
	root.AddCommand(build(commands)...)
	return root
}

// newBenchCmd is the parent of the benchmark commands.
func newBenchCmd() *cobra.Command {
	bench := &cobra.Command{
		Use:     "bench",
		Short:   "Measure throughput of whorl's parts on this machine",
		Example: `  whorl bench --help`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	bench.AddCommand(build(benchCommands)...)
	return bench
}

// build calls each constructor and sorts the commands by name.
func build(fs []func() *cobra.Command) []*cobra.Command {
	out := make([]*cobra.Command, 0, len(fs))
	for _, f := range fs {
		out = append(out, f())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}
