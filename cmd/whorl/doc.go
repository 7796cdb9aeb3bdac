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
// registerBench (root.go).
package main
