package main

import (
	"context"
	"encoding/json"
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
// to --out. On a cluster every seed is a job of one local cluster
// (sweepOnCluster); with --local each seed runs in this process.
func runSweep(ctx context.Context, w io.Writer, o runOptions) error {
	if err := o.checkSeeds(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	if !o.local {
		return sweepOnCluster(ctx, w, o)
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
	return writeSweep(w, o.out, reps, dirs)
}

// runModes runs the sweep (or the one seed) once per training mode of
// --modes, each in --out/MODE, then writes the modes' comparison to --out.
func runModes(ctx context.Context, w io.Writer, o runOptions) error {
	if err := o.checkModes(); err != nil {
		return err
	}
	if len(o.seeds) == 0 { // one seed: a sweep of it (--seed is then not a conflict)
		o.seeds = []int{o.seed}
		if prev := o.changed; prev != nil {
			o.changed = func(name string) bool { return name != "seed" && prev(name) }
		}
	}
	var sums []experiment.Summary
	for _, m := range o.modes {
		one := o
		one.modes, one.mode, one.out = nil, m, filepath.Join(o.out, m)
		fmt.Fprintf(w, "\n=== mode %s: %s\n", m, one.out)
		if err := runSweep(ctx, w, one); err != nil {
			return fmt.Errorf("mode %s: %w", m, err)
		}
		s, err := readSummary(one.out)
		if err != nil {
			return fmt.Errorf("mode %s: %w", m, err)
		}
		sums = append(sums, s)
	}
	cmp, err := experiment.CompareModes(sums)
	if err != nil {
		return err
	}
	if err := experiment.WriteComparison(o.out, cmp); err != nil {
		return fmt.Errorf("write the comparison: %w", err)
	}
	for _, d := range cmp.Differences {
		fmt.Fprintf(w, "\n%s minus %s, paired by seed: %+.1f ± %.1f points", d.Mode, d.From, 100*d.Difference.Mean, 100*d.Difference.Std)
	}
	fmt.Fprintf(w, "\ncomparison: %s\n", filepath.Join(o.out, experiment.FileReportMD))
	return nil
}

// checkModes refuses --modes with --mode or a job file's mode, an unknown
// or repeated mode.
func (o runOptions) checkModes() error {
	if o.mode != "" {
		return errors.New("--mode and --modes: give one (--modes runs each mode given)")
	}
	for i, m := range o.modes {
		if m != job.ModePretrainFinetune && m != job.ModeJoint {
			return fmt.Errorf("--modes: %q is not a mode; choose from %s, %s", m, job.ModePretrainFinetune, job.ModeJoint)
		}
		if slices.Contains(o.modes[:i], m) {
			return fmt.Errorf("--modes: %s is given twice", m)
		}
	}
	if o.job == "" {
		return nil
	}
	b, err := os.ReadFile(o.job)
	if err != nil {
		return fmt.Errorf("read --job-config: %w", err)
	}
	if set, err := job.SetKeys(b); err == nil && set["mode"] {
		return fmt.Errorf("--modes and mode in --job-config %s: drop the key, --modes sets the mode", o.job)
	}
	return nil
}

// readSummary reads the aggregate report a sweep wrote to dir.
func readSummary(dir string) (experiment.Summary, error) {
	var s experiment.Summary
	b, err := os.ReadFile(filepath.Join(dir, experiment.FileReport))
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		return s, fmt.Errorf("read the sweep's report in %s: %w", dir, err)
	}
	return s, nil
}

// writeSweep aggregates the seeds' reports (dirs[i] holds reps[i]), writes
// the aggregate report to out and prints its headline figures.
func writeSweep(w io.Writer, out string, reps []experiment.Report, dirs []string) error {
	sum, err := experiment.Aggregate(reps, dirs)
	if err != nil {
		return err
	}
	if err := experiment.WriteSummary(out, sum); err != nil {
		return fmt.Errorf("write the sweep's report: %w", err)
	}
	printSweep(w, sum, out)
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
