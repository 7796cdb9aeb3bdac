package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
)

// Where says where and how a run trains.
type Where struct {
	// Out is the run's folder: its report, plots, checkpoints and manifest,
	// and its cluster's state; a rerun with the same folder resumes.
	Out string
	// Local pretrains in this process without a cluster (the
	// single-process reference); otherwise Coordinators and Workers form
	// a local cluster.
	Local                 bool
	Coordinators, Workers int
}

// cluster sizes the local cluster for job c.
func (wh Where) cluster(c job.Config) ClusterConfig {
	return ClusterConfig{Coordinators: wh.Coordinators, Workers: wh.Workers, DataDir: c.Data.Dir}
}

// RunJob runs job c in wh.Out, printing its progress and outcome to w: a
// complete run there is shown, not redone; a run of another configuration
// is refused; an interrupted one resumes from its last checkpoint.
func RunJob(ctx context.Context, w io.Writer, wh Where, c job.Config) error {
	if err := os.MkdirAll(wh.Out, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	if err := CheckOut(wh.Out, c); err != nil {
		return err
	}
	if rep, ok := Finished(wh.Out); ok {
		fmt.Fprintf(w, "the run in %s is complete (rerun with a new --out to repeat it)\n", wh.Out)
		PrintSummary(w, rep, wh.Out)
		return nil
	}
	p := NewPrinter(w)
	defer p.Finish()
	r := &experiment.Runner{OutDir: wh.Out, Progress: p.Event}
	fmt.Fprintf(w, "whorl run: preset %s, model %s at %d px, seed %d, data %s, out %s\n",
		c.Preset, c.Model.Label(), c.Data.ImageSize, c.Seed, DataName(c.Data.Dir), wh.Out)
	var rep experiment.Report
	var err error
	if wh.Local {
		r.Cluster = experiment.ClusterInfo{Workers: 1, Coordinators: 0}
		fmt.Fprintf(w, "pretraining in this process (1 worker, no coordinator)\n")
		rep, err = r.RunLocal(ctx, c)
	} else {
		r.Cluster = experiment.ClusterInfo{Workers: wh.Workers, Coordinators: wh.Coordinators}
		fmt.Fprintf(w, "local cluster on loopback: %d coordinator(s), %d worker(s); logs in %s\n",
			wh.Coordinators, wh.Workers, filepath.Join(wh.Out, "cluster.log"))
		r.SetStart(time.Now())
		rep, err = runOnCluster(ctx, w, wh.Out, wh.cluster(c), c, r, p.Event)
	}
	p.Finish()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(w, "interrupted; rerun the same command to resume from the last checkpoint in %s\n", wh.Out)
		}
		return err
	}
	PrintSummary(w, rep, wh.Out)
	return nil
}

// CheckOut refuses an output folder that holds a run of another
// configuration (resuming it would mix two experiments).
func CheckOut(out string, c job.Config) error {
	b, err := os.ReadFile(filepath.Join(out, experiment.FileConfig))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the configuration of the run in --out: %w", err)
	}
	prev, err := job.Parse(b)
	if err != nil {
		return fmt.Errorf("--out %s holds an unreadable %s: %w", out, experiment.FileConfig, err)
	}
	if job.Digest(prev) != job.Digest(c) {
		return fmt.Errorf("--out %s holds a run of another configuration (seed %d, preset %s); use a new --out or the same settings to resume",
			out, prev.Seed, prev.Preset)
	}
	return nil
}

// Finished returns the report of a complete run in out (whose
// configuration CheckOut matched).
func Finished(out string) (experiment.Report, bool) {
	b, err := os.ReadFile(filepath.Join(out, experiment.FileReport))
	if err != nil {
		return experiment.Report{}, false
	}
	var rep experiment.Report
	if json.Unmarshal(b, &rep) != nil || rep.Finetune.Confusion == nil {
		return experiment.Report{}, false
	}
	return rep, true
}

// DataName names a data folder for people ("embedded" for none).
func DataName(dir string) string {
	if dir == "" {
		return "embedded"
	}
	return dir
}

// PrintSummary prints a run's headline numbers and where its outputs are.
func PrintSummary(w io.Writer, rep experiment.Report, out string) {
	fmt.Fprintf(w, "\n%-28s %6.1f%%\n%-28s %6.1f%%\n%-28s %+6.1f points\n%-28s %6.1f%%\n%-28s %6.0f s\n",
		"baseline test accuracy", 100*rep.Baseline.TestAccuracy,
		"fine-tuned test accuracy", 100*rep.Finetune.TestAccuracy,
		"gain", 100*rep.Gain,
		"rotation test accuracy", 100*rep.Pretext.TestRotationAccuracy,
		"total time", rep.Timing.TotalSeconds)
	if sk := rep.Dataset.Skipped; len(sk) > 0 {
		fmt.Fprintf(w, "left out: %d image file(s) that could not be read: %s (all listed in report.md and manifest.json)\n",
			len(sk), job.SkippedSummary(sk, 3))
	}
	fmt.Fprintf(w, "report: %s\n", filepath.Join(out, experiment.FileReportMD))
}
