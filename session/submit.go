package session

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
)

// SubmitSeeds runs job base once per seed on the cluster of cl (`whorl
// submit --seeds`), one after the other, each followed by WatchJob polling
// every every, keeping each seed's report in out/seed-N (a seed whose
// report is there is not run again), then writes the aggregate report to
// out.
func SubmitSeeds(ctx context.Context, w io.Writer, cl *client.Client, base job.Config, seeds []int, out string, every time.Duration) error {
	var reps []experiment.Report
	var dirs []string
	for i, s := range seeds {
		if s < 0 || slices.Contains(seeds[:i], s) {
			return fmt.Errorf("--seeds: %d is negative or given twice", s)
		}
		dir := SeedDir(out, uint64(s))
		rep, ok := Finished(dir)
		if !ok {
			fmt.Fprintf(w, "\n== seed %d (%d of %d): %s\n", s, i+1, len(seeds), dir)
			var err error
			if rep, err = submitSeed(ctx, w, cl, base, uint64(s), dir, every); err != nil {
				return fmt.Errorf("seed %d: %w (rerun the same command to go on; finished seeds are kept)", s, err)
			}
		} else {
			fmt.Fprintf(w, "seed %d: the report in %s is complete\n", s, dir)
		}
		reps, dirs = append(reps, rep), append(dirs, filepath.Base(dir))
	}
	return WriteSweep(w, out, reps, dirs)
}

// submitSeed runs base at seed on the cluster, waits for it and writes its
// report to dir.
func submitSeed(ctx context.Context, w io.Writer, cl *client.Client, base job.Config, seed uint64, dir string, every time.Duration) (experiment.Report, error) {
	c := base
	c.Seed = seed
	id, err := cl.SubmitJob(ctx, c.JSON())
	if err != nil {
		return experiment.Report{}, err
	}
	fmt.Fprintf(w, "submitted job %s\n", id)
	res, err := WatchJob(ctx, w, cl, id, every)
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
