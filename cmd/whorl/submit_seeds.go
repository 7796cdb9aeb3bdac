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

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/session"
)

// submitSeeds runs the job cfg once per seed of --seeds on the cluster, one
// after the other, keeping each seed's report in --out/seed-N (a seed whose
// report is there is not run again), then writes the aggregate report.
func submitSeeds(ctx context.Context, w io.Writer, cl *client.Client, o submitOptions, cfg []byte) error {
	if o.out == "" {
		return errors.New("--seeds needs --out (the folder for each seed's report and the aggregate)")
	}
	base, err := job.Parse(cfg)
	if err != nil {
		return err
	}
	var reps []experiment.Report
	var dirs []string
	for i, s := range o.seeds {
		if s < 0 || slices.Contains(o.seeds[:i], s) {
			return fmt.Errorf("--seeds: %d is negative or given twice", s)
		}
		dir := session.SeedDir(o.out, uint64(s))
		rep, ok := session.Finished(dir)
		if !ok {
			fmt.Fprintf(w, "\n== seed %d (%d of %d): %s\n", s, i+1, len(o.seeds), dir)
			if rep, err = submitSeed(ctx, w, cl, o, base, uint64(s), dir); err != nil {
				return fmt.Errorf("seed %d: %w (rerun the same command to go on; finished seeds are kept)", s, err)
			}
		} else {
			fmt.Fprintf(w, "seed %d: the report in %s is complete\n", s, dir)
		}
		reps, dirs = append(reps, rep), append(dirs, filepath.Base(dir))
	}
	return session.WriteSweep(w, o.out, reps, dirs)
}

// submitSeed runs base at seed on the cluster, waits for it and writes its
// report to dir.
func submitSeed(ctx context.Context, w io.Writer, cl *client.Client, o submitOptions, base job.Config, seed uint64, dir string) (experiment.Report, error) {
	c := base
	c.Seed = seed
	id, err := cl.SubmitJob(ctx, c.JSON())
	if err != nil {
		return experiment.Report{}, err
	}
	fmt.Fprintf(w, "submitted job %s\n", id)
	res, err := followJob(ctx, w, cl, id, o.pollInterval)
	if err != nil {
		return experiment.Report{}, err
	}
	var rep experiment.Report
	if err := json.Unmarshal(res.GetReportJson(), &rep); err != nil {
		return rep, fmt.Errorf("decode the report of %s: %w", id, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := experiment.WriteReport(dir, rep); err != nil {
		return rep, fmt.Errorf("write the report of seed %d: %w", seed, err)
	}
	return rep, nil
}
