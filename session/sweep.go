package session

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
)

// SeedDir is where a sweep keeps seed s's run, inside out.
func SeedDir(out string, s uint64) string { return filepath.Join(out, fmt.Sprintf("seed-%d", s)) }

// Sweep runs each of configs (one job per seed: the same but the seed)
// in its own folder of wh.Out (seed-N, a complete run that resumes like
// one: a finished seed is not redone), then writes the aggregate
// report.json and report.md to wh.Out. On a cluster every seed is a job of
// one local cluster (its state in wh.Out/cluster); with wh.Local each seed
// runs in this process.
func Sweep(ctx context.Context, w io.Writer, wh Where, configs []job.Config) error {
	if err := os.MkdirAll(wh.Out, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	if !wh.Local {
		return sweepOnCluster(ctx, w, wh, configs)
	}
	var reps []experiment.Report
	var dirs []string
	for i, c := range configs {
		one := wh
		one.Out = SeedDir(wh.Out, c.Seed)
		fmt.Fprintf(w, "\n== seed %d (%d of %d): %s\n", c.Seed, i+1, len(configs), one.Out)
		if err := RunJob(ctx, w, one, c); err != nil {
			return fmt.Errorf("seed %d: %w (rerun the same command to resume; finished seeds are kept)", c.Seed, err)
		}
		rep, ok := Finished(one.Out)
		if !ok {
			return fmt.Errorf("seed %d: no complete report in %s", c.Seed, one.Out)
		}
		reps, dirs = append(reps, rep), append(dirs, filepath.Base(one.Out))
	}
	return WriteSweep(w, wh.Out, reps, dirs)
}

// CompareModes reads the sweep of each mode in out/MODE, writes the
// modes' comparison (paired by seed) to out and prints its differences.
func CompareModes(w io.Writer, out string, modes []string) error {
	var sums []experiment.Summary
	for _, m := range modes {
		s, err := readSummary(filepath.Join(out, m))
		if err != nil {
			return fmt.Errorf("mode %s: %w", m, err)
		}
		sums = append(sums, s)
	}
	cmp, err := experiment.CompareModes(sums)
	if err != nil {
		return err
	}
	if err := experiment.WriteComparison(out, cmp); err != nil {
		return fmt.Errorf("write the comparison: %w", err)
	}
	for _, d := range cmp.Differences {
		fmt.Fprintf(w, "\n%s minus %s, paired by seed: %+.1f ± %.1f points", d.Mode, d.From, 100*d.Difference.Mean, 100*d.Difference.Std)
	}
	fmt.Fprintf(w, "\ncomparison: %s\n", filepath.Join(out, experiment.FileReportMD))
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

// WriteSweep aggregates the seeds' reports (dirs[i] holds reps[i]), writes
// the aggregate report to out and prints its headline figures.
func WriteSweep(w io.Writer, out string, reps []experiment.Report, dirs []string) error {
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
