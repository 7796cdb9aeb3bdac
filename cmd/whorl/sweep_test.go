package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/session"
)

// TestRunSweep runs `whorl run --seeds` on a tiny job: one complete run
// per seed in --out/seed-N and the aggregate report in --out, whose figures
// are those of the seeds' reports; a rerun redoes no finished seed.
func TestRunSweep(t *testing.T) {
	data, jobFile, out := flowerFolder(t, 3, 16), tinyJob(t), t.TempDir()
	args := []string{"run", "--data", data, "--job-config", jobFile, "--out", out, "--seeds", "3,4", "--local"}
	text, err := runWhorl(t, args...)
	if err != nil {
		t.Fatalf("whorl run --seeds: %v\n%s", err, text)
	}
	var sum experiment.Summary
	b, err := os.ReadFile(filepath.Join(out, experiment.FileReport))
	if err != nil || json.Unmarshal(b, &sum) != nil {
		t.Fatalf("aggregate report.json: %v", err)
	}
	if !slices.Equal(sum.Seeds, []uint64{3, 4}) || len(sum.Runs) != 2 {
		t.Fatalf("aggregate seeds %v, runs %d; want [3 4]", sum.Seeds, len(sum.Runs))
	}
	var gains []float64
	for i, s := range []string{"seed-3", "seed-4"} {
		rep := readReport(t, filepath.Join(out, s))
		if rep.Seed != sum.Seeds[i] || sum.Runs[i].Dir != s || sum.Runs[i].Gain != rep.Gain {
			t.Errorf("%s: report seed %d gain %g, aggregate row %+v", s, rep.Seed, rep.Gain, sum.Runs[i])
		}
		gains = append(gains, rep.Gain)
	}
	if want := (gains[0] + gains[1]) / 2; sum.Gain.Mean != want || sum.GainCI == nil {
		t.Errorf("aggregate gain %+v (interval %v), want mean %g with an interval", sum.Gain, sum.GainCI, want)
	}
	if md, err := os.ReadFile(filepath.Join(out, experiment.FileReportMD)); err != nil || !strings.Contains(string(md), "95% t-interval") {
		t.Errorf("aggregate report.md: %v\n%s", err, md)
	}
	again, err := runWhorl(t, args...)
	if err != nil || strings.Count(again, "is complete") != 2 {
		t.Errorf("rerun: %v, want both seeds reported complete:\n%s", err, again)
	}
}

func TestRunSweepRefusals(t *testing.T) {
	withSeed := writeJob(t, job.DefaultConfig())
	for _, tt := range []struct {
		name   string
		args   []string
		errHas string
	}{
		{"with --seed", []string{"--seeds", "1,2", "--seed", "3"}, "--seed and --seeds"},
		{"twice", []string{"--seeds", "1,2,1"}, "1 is given twice"},
		{"negative", []string{"--seeds", "-1"}, "out of range"},
		{"job file seed", []string{"--seeds", "1,2", "--job-config", withSeed}, "seed in --job-config"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text, err := runWhorl(t, append([]string{"run", "--out", t.TempDir()}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("whorl run %v: %v, want an error naming %q\n%s", tt.args, err, tt.errHas, text)
			}
		})
	}
}

// TestRunModes runs `whorl run --modes pretrain-finetune,joint --seeds` on a
// tiny job: each mode's sweep in --out/MODE, and the comparison in --out
// with the joint classifier's paired difference from the fine-tuned one.
func TestRunModes(t *testing.T) {
	data, jobFile, out := flowerFolder(t, 3, 16), tinyJob(t), t.TempDir()
	args := []string{"run", "--data", data, "--job-config", jobFile, "--out", out, "--seeds", "3,4", "--local",
		"--modes", job.ModePretrainFinetune + "," + job.ModeJoint}
	if text, err := runWhorl(t, args...); err != nil {
		t.Fatalf("whorl run --modes: %v\n%s", err, text)
	}
	var cmp experiment.Comparison
	b, err := os.ReadFile(filepath.Join(out, experiment.FileReport))
	if err != nil || json.Unmarshal(b, &cmp) != nil || len(cmp.Modes) != 2 || len(cmp.Differences) != 1 {
		t.Fatalf("comparison report.json: %v, %+v", err, cmp)
	}
	pf, joint := readReport(t, filepath.Join(out, job.ModePretrainFinetune, "seed-4")), readReport(t, filepath.Join(out, job.ModeJoint, "seed-4"))
	if !joint.Config.IsJoint() || pf.Config.IsJoint() || joint.Baseline.TestAccuracy != pf.Baseline.TestAccuracy {
		t.Errorf("seed 4: modes %q / %q, baselines %g / %g; want the same baseline in both modes",
			pf.Config.Mode, joint.Config.Mode, pf.Baseline.TestAccuracy, joint.Baseline.TestAccuracy)
	}
	if got, want := cmp.Differences[0].Difference.Values[1], joint.Finetune.TestAccuracy-pf.Finetune.TestAccuracy; got != want {
		t.Errorf("seed 4 difference %g, want %g", got, want)
	}
	for _, tt := range []struct {
		args   []string
		errHas string
	}{
		{[]string{"--modes", "joint", "--mode", "joint"}, "--mode and --modes"},
		{[]string{"--modes", "joint,s4l"}, `"s4l" is not a mode`},
		{[]string{"--modes", "joint,joint"}, "joint is given twice"},
	} {
		text, err := runWhorl(t, append([]string{"run", "--out", t.TempDir()}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("whorl run %v: %v, want an error naming %q\n%s", tt.args, err, tt.errHas, text)
		}
	}
}

// TestSubmitSeeds runs `whorl submit --seeds 3,4 --out DIR` against one
// running cluster (a coordinator and a worker): each seed a job of its own,
// one after the other, its report in DIR/seed-N, the aggregate in DIR; a
// rerun submits nothing and reports both seeds complete.
func TestSubmitSeeds(t *testing.T) {
	c := job.DefaultConfig()
	c.Data = job.DataConfig{Dir: flowerFolder(t, 3, 16), ImageSize: 8}
	c.Split = job.SplitConfig{TestFraction: 0.25, LabeledFraction: 0.5, ValidationFraction: 0.2}
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch = 1, 8
	c.Supervised.Epochs, c.Supervised.Batch = 1, 8
	jobFile := writeJob(t, c, "seed")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lc, err := session.StartCluster(ctx, t.TempDir(), session.ClusterConfig{Workers: 1, Coordinators: 1, DataDir: c.Data.Dir},
		&experiment.Runner{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Stop()
	out := t.TempDir()
	cert, err := lc.Certs().Files(identity.Client, "test") // the local cluster runs on mutual TLS
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"submit", "--coordinator", strings.Join(lc.Addrs(), ","), "--job", jobFile,
		"--seeds", "3,4", "--out", out, "--poll", "100ms", "--timeout", "1m",
		"--tls-cert", cert.Cert, "--tls-key", cert.Key, "--tls-ca", cert.CA}
	if text, err := runWhorl(t, args...); err != nil {
		t.Fatalf("whorl submit --seeds: %v\n%s", err, text)
	}
	var sum experiment.Summary
	b, err := os.ReadFile(filepath.Join(out, experiment.FileReport))
	if err != nil || json.Unmarshal(b, &sum) != nil || !slices.Equal(sum.Seeds, []uint64{3, 4}) {
		t.Fatalf("aggregate report: %v, seeds %v", err, sum.Seeds)
	}
	for i, s := range []string{"seed-3", "seed-4"} {
		rep := readReport(t, filepath.Join(out, s))
		if rep.Seed != sum.Seeds[i] || sum.Runs[i].Gain != rep.Gain {
			t.Errorf("%s: report seed %d gain %g, aggregate row %+v", s, rep.Seed, rep.Gain, sum.Runs[i])
		}
	}
	again, err := runWhorl(t, args...)
	if err != nil || strings.Count(again, "is complete") != 2 || strings.Contains(again, "submitted job") {
		t.Errorf("rerun: %v, want both seeds complete and nothing submitted:\n%s", err, again)
	}
	if _, err := runWhorl(t, "submit", "--coordinator", "127.0.0.1:1", "--seeds", "1"); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("--seeds without --out: %v, want an error naming --out", err)
	}
}

// TestRunSweepOnCluster runs `whorl run --seeds 3,4` on a local cluster:
// one cluster in --out/cluster runs both seeds as two jobs (no cluster per
// seed), seed 4 gives the result it gives alone, and a rerun after seed 4's
// report is lost follows seed 4's finished job instead of submitting again.
func TestRunSweepOnCluster(t *testing.T) {
	data, jobFile, out := flowerFolder(t, 3, 16), tinyJob(t), t.TempDir()
	args := []string{"run", "--data", data, "--job-config", jobFile, "--out", out, "--seeds", "3,4", "--workers", "1"}
	text, err := runWhorl(t, args...)
	if err != nil {
		t.Fatalf("whorl run --seeds: %v\n%s", err, text)
	}
	if n := strings.Count(text, "local cluster on loopback"); n != 1 || strings.Count(text, "submitted job") != 2 {
		t.Errorf("%d clusters started and %d jobs submitted, want 1 and 2:\n%s", n, strings.Count(text, "submitted job"), text)
	}
	if _, err := os.Stat(filepath.Join(out, "cluster", "ports.json")); err != nil {
		t.Errorf("the sweep's cluster: %v", err)
	}
	ids := map[string]bool{}
	for _, s := range []string{"seed-3", "seed-4"} {
		if _, err := os.Stat(filepath.Join(out, s, "cluster")); err == nil {
			t.Errorf("%s has a cluster of its own", s)
		}
		ids[strings.TrimSpace(readFile(t, filepath.Join(out, s, session.FileJobID)))] = true
	}
	if len(ids) != 2 {
		t.Errorf("job ids %v, want one per seed", ids)
	}
	alone := t.TempDir()
	if text, err := runWhorl(t, "run", "--data", data, "--job-config", jobFile, "--out", alone, "--seed", "4", "--workers", "1"); err != nil {
		t.Fatalf("whorl run --seed 4: %v\n%s", err, text)
	}
	swept, single := readReport(t, filepath.Join(out, "seed-4")), readReport(t, alone)
	if swept.Baseline.TestAccuracy != single.Baseline.TestAccuracy || swept.Finetune.TestAccuracy != single.Finetune.TestAccuracy {
		t.Errorf("seed 4 in the sweep: baseline %g fine-tuned %g; alone %g %g", swept.Baseline.TestAccuracy,
			swept.Finetune.TestAccuracy, single.Baseline.TestAccuracy, single.Finetune.TestAccuracy)
	}
	if err := os.Remove(filepath.Join(out, "seed-4", experiment.FileReport)); err != nil {
		t.Fatal(err)
	}
	again, err := runWhorl(t, args...)
	if err != nil || !strings.Contains(again, "resuming job") || strings.Contains(again, "submitted job") {
		t.Errorf("rerun: %v, want seed 4's job followed and nothing submitted:\n%s", err, again)
	}
	if rep := readReport(t, filepath.Join(out, "seed-4")); rep.Finetune.TestAccuracy != swept.Finetune.TestAccuracy {
		t.Errorf("seed 4's report after the rerun: %g, want %g", rep.Finetune.TestAccuracy, swept.Finetune.TestAccuracy)
	}
}

// readFile returns the file's contents, failing the test if it is unreadable.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
