// Command whorl is the single binary of the whorl trainer.
//
// It is the only package that reads flags, configuration files and the
// environment (cobra + viper). Every flag of every subcommand can also be set
// in a YAML configuration file given with --config (keys are the flag names)
// or in the environment as WHORL_<FLAG> with dashes written as underscores
// (for example WHORL_METRICS_ADDR). Flags on the command line win over the
// environment, which wins over the configuration file.
//
// Subcommands live one per file (or one family per file); each is built by a
// newXxxCmd function and registered by an init() calling register or
// registerBench (root.go). A command's file holds its flags and the wiring
// of its parts; what it does lives in the package that owns it (session,
// experiment, shard, internal/tlsfiles, ...), its checked flag values in
// internal/cliflag.
package main
