package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// envPrefix is the prefix of the environment variables that set flags.
const envPrefix = "WHORL"

// loadConfig fills every flag of cmd that was not given on the command line
// from the environment (WHORL_<FLAG>) or else from the --config file. Values
// go through the flag's own Set, so a bad value from any source is rejected
// with the same message as on the command line.
func loadConfig(cmd *cobra.Command, _ []string) error {
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv(envPrefix + "_CONFIG")
	}
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("read config file %s: %w", path, err)
		}
		if err := checkConfigKeys(cmd.Root(), v, path); err != nil {
			return err
		}
	}
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || !v.IsSet(f.Name) {
			return
		}
		if err := setFlag(cmd, f, v); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// setFlag sets f from viper, naming where the bad value came from.
func setFlag(cmd *cobra.Command, f *pflag.Flag, v *viper.Viper) error {
	val := v.Get(f.Name)
	var s string
	switch x := val.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		s = strings.Join(parts, ",")
	default:
		s = fmt.Sprint(x)
	}
	if err := cmd.Flags().Set(f.Name, s); err != nil {
		env := envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		return fmt.Errorf("flag --%s (from %s or the config file): %w", f.Name, env, err)
	}
	return nil
}

// checkConfigKeys rejects keys in the config file that are no flag of any
// whorl command, so a typo does not pass silently. Keys of other commands are
// allowed: one file may configure the coordinator and the workers.
func checkConfigKeys(root *cobra.Command, v *viper.Viper, path string) error {
	known := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	var unknown []string
	for _, k := range v.AllKeys() {
		top := strings.SplitN(k, ".", 2)[0]
		if !known[top] && v.InConfig(top) {
			unknown = append(unknown, top)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("config file %s: unknown key(s) %s: keys must be whorl flag names (see whorl <command> --help)",
		path, strings.Join(unknown, ", "))
}
