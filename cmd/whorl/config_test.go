package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/whorl-ml/whorl/internal/cliflag"
)

// testTree is a root with one subcommand that has range-checked flags.
func testTree(got *struct {
	workers int
	lr      float64
	preset  string
	timeout time.Duration
}) *cobra.Command {
	root := &cobra.Command{Use: "whorl", SilenceUsage: true, SilenceErrors: true, PersistentPreRunE: loadConfig}
	root.PersistentFlags().String("config", "", "")
	sub := &cobra.Command{Use: "run", RunE: func(*cobra.Command, []string) error { return nil }}
	cliflag.IntRange(sub.Flags(), &got.workers, "workers", 2, 1, 64, "workers")
	cliflag.FloatRange(sub.Flags(), &got.lr, "learning-rate", 0.1, 0, 10, "lr")
	cliflag.Enum(sub.Flags(), &got.preset, "preset", "quick", []string{"quick", "paper"}, "preset")
	cliflag.DurationRange(sub.Flags(), &got.timeout, "peer-timeout", 10*time.Second, time.Second, time.Hour, "timeout")
	root.AddCommand(sub)
	return root
}

func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "workers: 4\npreset: paper\npeer-timeout: 30s\n")
	typo := write("typo.yaml", "wrokers: 4\n")
	bad := write("bad.yaml", "workers: 400\n")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		workers int
		preset  string
		timeout time.Duration
		errHas  []string
	}{
		{name: "defaults", args: []string{"run"}, workers: 2, preset: "quick", timeout: 10 * time.Second},
		{name: "flag", args: []string{"run", "--workers", "8"}, workers: 8, preset: "quick", timeout: 10 * time.Second},
		{name: "file", args: []string{"run", "--config", good}, workers: 4, preset: "paper", timeout: 30 * time.Second},
		{name: "env over file", args: []string{"run", "--config", good}, env: map[string]string{"WHORL_WORKERS": "6"},
			workers: 6, preset: "paper", timeout: 30 * time.Second},
		{name: "flag over env", args: []string{"run", "--workers", "3"}, env: map[string]string{"WHORL_WORKERS": "6"},
			workers: 3, preset: "quick", timeout: 10 * time.Second},
		{name: "dash env", args: []string{"run"}, env: map[string]string{"WHORL_PEER_TIMEOUT": "2m"},
			workers: 2, preset: "quick", timeout: 2 * time.Minute},
		{name: "out of range flag", args: []string{"run", "--workers", "0"}, errHas: []string{"--workers", "1..64"}},
		{name: "bad enum", args: []string{"run", "--preset", "huge"}, errHas: []string{"--preset", "quick, paper"}},
		{name: "bad env", args: []string{"run"}, env: map[string]string{"WHORL_LEARNING_RATE": "fast"},
			errHas: []string{"--learning-rate", "WHORL_LEARNING_RATE", "0..10"}},
		{name: "bad file value", args: []string{"run", "--config", bad}, errHas: []string{"--workers", "1..64"}},
		{name: "unknown key", args: []string{"run", "--config", typo}, errHas: []string{"typo.yaml", "wrokers"}},
		{name: "unknown flag", args: []string{"run", "--wrokers", "3"}, errHas: []string{"wrokers"}},
		{name: "missing file", args: []string{"run", "--config", filepath.Join(dir, "nope.yaml")}, errHas: []string{"nope.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var got struct {
				workers int
				lr      float64
				preset  string
				timeout time.Duration
			}
			root := testTree(&got)
			root.SetArgs(tc.args)
			root.SetOut(&bytes.Buffer{})
			root.SetErr(&bytes.Buffer{})
			err := root.Execute()
			if len(tc.errHas) > 0 {
				if err == nil {
					t.Fatalf("want an error naming %v, got none", tc.errHas)
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.workers != tc.workers || got.preset != tc.preset || got.timeout != tc.timeout {
				t.Errorf("got workers=%d preset=%s timeout=%v, want %d %s %v",
					got.workers, got.preset, got.timeout, tc.workers, tc.preset, tc.timeout)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetArgs([]string{"version"})
	root.SetOut(&out)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "go1.") || !strings.HasPrefix(out.String(), "whorl ") {
		t.Errorf("version output %q lacks the version or Go version", out.String())
	}
}
