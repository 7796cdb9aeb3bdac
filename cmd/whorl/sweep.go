package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
)

// seedDir is where a sweep keeps seed s's run, inside --out.
func seedDir(out string, s int) string { return filepath.Join(out, fmt.Sprintf("seed-%d", s)) }

// checkSeeds refuses --seeds together with --seed or a job file's seed, a
// repeated seed and one out of range.
func (o runOptions) checkSeeds() error {
	if o.changed != nil && o.changed("seed") {
		return errors.New("--seed and --seeds: give one (--seeds 1,2,3 runs every seed)")
	}
	for i, s := range o.seeds {
		if s < 0 || s > 1<<31-1 {
			return fmt.Errorf("--seeds: %d is out of range 0..%d", s, 1<<31-1)
		}
		if slices.Contains(o.seeds[:i], s) {
			return fmt.Errorf("--seeds: %d is given twice", s)
		}
	}
	if o.job == "" {
		return nil
	}
	b, err := os.ReadFile(o.job)
	if err != nil {
		return fmt.Errorf("read --job-config: %w", err)
	}
	if set, err := job.SetKeys(b); err == nil && set["seed"] {
		return fmt.Errorf("--seeds and seed in --job-config %s: drop the key, the sweep sets the seed", o.job)
	}
	return nil
}

// runSweep runs the experiment once per seed of --seeds, each in its own
// folder of --out (seed-N, a complete run that resumes like one: a finished
// seed is not redone), then writes the aggregate report.json and report.md
// to --out.
func runSweep(ctx context.Context, w io.Writer, o runOptions) error {
	if err := o.checkSeeds(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	var reps []experiment.Report
	var dirs []string
	for i, s := range o.seeds {
		one := o
		one.seeds, one.seed, one.out = nil, s, seedDir(o.out, s)
		fmt.Fprintf(w, "\n== seed %d (%d of %d): %s\n", s, i+1, len(o.seeds), one.out)
		if err := runExperiment(ctx, w, one); err != nil {
			return fmt.Errorf("seed %d: %w (rerun the same command to resume; finished seeds are kept)", s, err)
		}
		rep, ok := finishedRun(one.out)
		if !ok {
			return fmt.Errorf("seed %d: no complete report in %s", s, one.out)
		}
		reps, dirs = append(reps, rep), append(dirs, filepath.Base(one.out))
	}
	sum, err := experiment.Aggregate(reps, dirs)
	if err != nil {
		return err
	}
	if err := experiment.WriteSummary(o.out, sum); err != nil {
		return fmt.Errorf("write the sweep's report: %w", err)
	}
	printSweep(w, sum, o.out)
	return nil
}

// printSweep prints the sweep's headline figures.
func printSweep(w io.Writer, s experiment.Summary, out string) {
	fmt.Fprintf(w, "\nover seeds %v:\n%-28s %5.1f ± %.1f%%\n%-28s %5.1f ± %.1f%%\n%-28s %+5.1f ± %.1f points",
		s.Seeds, "baseline test accuracy", 100*s.Baseline.Mean, 100*s.Baseline.Std,
		"fine-tuned test accuracy", 100*s.Finetune.Mean, 100*s.Finetune.Std, "paired gain", 100*s.Gain.Mean, 100*s.Gain.Std)
	if s.GainCI != nil {
		fmt.Fprintf(w, " (95%% t-interval %+.1f to %+.1f)", 100*s.GainCI.Low, 100*s.GainCI.High)
	}
	fmt.Fprintf(w, "\nreport: %s\n", filepath.Join(out, experiment.FileReportMD))
}
