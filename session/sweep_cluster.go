package session

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/internal/atomicfile"
	"github.com/whorl-ml/whorl/job"
)

// FileJobID, in a seed's folder, names the cluster job that runs the seed,
// so that a rerun follows that job instead of submitting the seed again.
const FileJobID = "job-id"

// seedRunners runs the non-distributed phases of a sweep's jobs on the
// coordinators: each job goes to the runner of its configuration's seed,
// which writes into that seed's folder.
type seedRunners map[uint64]*experiment.Runner

// runner returns the runner of the job configJSON.
func (s seedRunners) runner(configJSON []byte) (*experiment.Runner, error) {
	c, err := job.Parse(configJSON)
	if err != nil {
		return nil, err
	}
	r, ok := s[c.Seed]
	if !ok {
		return nil, fmt.Errorf("job of seed %d: this sweep runs no such seed", c.Seed)
	}
	return r, nil
}

// Prepare implements coordinator.Phases by the seed's runner.
func (s seedRunners) Prepare(ctx context.Context, configJSON []byte) (job.Prepared, error) {
	r, err := s.runner(configJSON)
	if err != nil {
		return job.Prepared{}, err
	}
	return r.Prepare(ctx, configJSON)
}

// Baseline implements coordinator.Phases by the seed's runner.
func (s seedRunners) Baseline(ctx context.Context, configJSON []byte) ([]byte, error) {
	r, err := s.runner(configJSON)
	if err != nil {
		return nil, err
	}
	return r.Baseline(ctx, configJSON)
}

// FineTune implements coordinator.Phases by the seed's runner.
func (s seedRunners) FineTune(ctx context.Context, configJSON, pretrained, baselineJSON []byte, pretext []job.EpochStat) ([]byte, error) {
	r, err := s.runner(configJSON)
	if err != nil {
		return nil, err
	}
	return r.FineTune(ctx, configJSON, pretrained, baselineJSON, pretext)
}

// sweepSeed is one seed of a sweep: its configuration, folder, runner and
// progress.
type sweepSeed struct {
	seed uint64
	c    job.Config
	dir  string
	r    *experiment.Runner
	p    *Printer
	rep  experiment.Report
	done bool // its folder holds its complete report
}

// planSweep builds each seed's configuration and checks its folder: a
// folder of another configuration is refused, a complete one is done.
func planSweep(w io.Writer, wh Where, configs []job.Config) ([]*sweepSeed, error) {
	var seeds []*sweepSeed
	for _, c := range configs {
		s := c.Seed
		ss := &sweepSeed{seed: s, c: c, dir: SeedDir(wh.Out, s), p: NewPrinter(w)}
		if err := os.MkdirAll(ss.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", ss.dir, err)
		}
		if err := CheckOut(ss.dir, c); err != nil {
			return nil, fmt.Errorf("seed %d: %w", s, err)
		}
		ss.rep, ss.done = Finished(ss.dir)
		ss.r = &experiment.Runner{OutDir: ss.dir, Progress: ss.p.Event,
			Cluster: experiment.ClusterInfo{Workers: wh.Workers, Coordinators: wh.Coordinators}}
		seeds = append(seeds, ss)
	}
	return seeds, nil
}

// sweepOnCluster runs every seed as a job of one local cluster (its state
// in wh.Out/cluster), one after the other, each seed's run in
// wh.Out/seed-N, then writes the aggregate report. A rerun follows the job
// a seed's folder names and redoes no finished seed.
func sweepOnCluster(ctx context.Context, w io.Writer, wh Where, configs []job.Config) error {
	seeds, err := planSweep(w, wh, configs)
	if err != nil {
		return err
	}
	todo := 0
	for _, ss := range seeds {
		if ss.done {
			fmt.Fprintf(w, "seed %d: the run in %s is complete\n", ss.seed, ss.dir)
		} else {
			todo++
		}
	}
	if todo > 0 {
		if err := runSeeds(ctx, w, wh, seeds); err != nil {
			return err
		}
	}
	var reps []experiment.Report
	var dirs []string
	for _, ss := range seeds {
		reps, dirs = append(reps, ss.rep), append(dirs, filepath.Base(ss.dir))
	}
	return WriteSweep(w, wh.Out, reps, dirs)
}

// runSeeds starts the sweep's cluster and runs its unfinished seeds.
func runSeeds(ctx context.Context, w io.Writer, wh Where, seeds []*sweepSeed) error {
	phases := seedRunners{}
	for _, ss := range seeds {
		phases[ss.c.Seed] = ss.r
	}
	fmt.Fprintf(w, "local cluster on loopback for seeds %s: %d coordinator(s), %d worker(s); logs in %s\n",
		seedList(seeds), wh.Coordinators, wh.Workers, filepath.Join(wh.Out, "cluster.log"))
	s, err := Open(ctx, wh.Out, wh.cluster(seeds[0].c), phases)
	if err != nil {
		return err
	}
	defer s.Close()
	for i, ss := range seeds {
		if ss.done {
			continue
		}
		fmt.Fprintf(w, "\n== seed %d (%d of %d): %s\n", ss.seed, i+1, len(seeds), ss.dir)
		if err := ss.run(ctx, w, s); err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(w, "interrupted; rerun the same command to resume from the last checkpoint in %s\n", wh.Out)
			}
			return fmt.Errorf("seed %d: %w (rerun the same command to resume; finished seeds are kept)", ss.seed, err)
		}
	}
	return nil
}

// run submits the seed's job (or follows the one its folder names), waits
// for its report and keeps it in the seed's folder.
func (ss *sweepSeed) run(ctx context.Context, w io.Writer, s *Session) error {
	defer ss.p.Finish()
	want := ""
	if b, err := os.ReadFile(filepath.Join(ss.dir, FileJobID)); err == nil {
		want = strings.TrimSpace(string(b))
	}
	fmt.Fprintf(w, "whorl run: preset %s, model %s at %d px, seed %d, data %s\n",
		ss.c.Preset, ss.c.Model.Label(), ss.c.Data.ImageSize, ss.c.Seed, DataName(ss.c.Data.Dir))
	ss.r.SetStart(time.Now())
	id, err := s.SubmitOrResume(ctx, w, ss.c, want)
	if err != nil {
		return err
	}
	if id != want {
		if err := atomicfile.Write(filepath.Join(ss.dir, FileJobID), []byte(id+"\n"), 0o644); err != nil {
			return fmt.Errorf("record the job id: %w", err)
		}
	}
	rep, err := s.Wait(ctx, id, ss.p.Event)
	if err != nil {
		return err
	}
	ss.p.Finish()
	if _, ok := Finished(ss.dir); !ok { // a job finished before this run wrote no files here
		if err := experiment.WriteReport(ss.dir, rep); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
	}
	ss.rep, ss.done = rep, true
	PrintSummary(w, rep, ss.dir)
	return nil
}

// seedList names the seeds, "1,2,3".
func seedList(seeds []*sweepSeed) string {
	var b strings.Builder
	for i, ss := range seeds {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, ss.seed)
	}
	return b.String()
}
