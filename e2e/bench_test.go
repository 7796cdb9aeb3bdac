package e2e

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/worker"
)

// benchJob is the pretraining measured by BenchmarkPretrain: the small
// network at 32 px, global batch 32 images (128 samples), 2 epochs.
func benchJob(b *testing.B, dir string) job.Config {
	c := job.DefaultConfig()
	c.Data.Dir, c.Data.ImageSize = dir, 32
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch = 2, 32
	c.CheckpointEvery = 1000
	c.Supervised.Epochs, c.Supervised.Batch = 1, 4
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkPretrain compares the same pretraining (same data, global batch
// and steps) run by one process (experiment.Pretrain, all cores: the
// baseline) and by 1 and 2 workers of a coordinator on loopback (the cores
// split between the workers). Every iteration runs the three one after the
// other, so each comparison is paired in time on a shared machine. It
// reports seconds per global step of each and the ratios to the process, in
// wall time and in CPU time of the whole test process (more stable on a
// loaded machine; the cluster runs include the coordinator's raft work for
// the whole job); the workers' time includes ring formation, the weight
// broadcast, progress reports and checkpoints.
//
//	go test -run '^$' -bench Pretrain -benchtime 3x ./e2e
func BenchmarkPretrain(b *testing.B) {
	dir := tinyDataDir(b, 5, 40)
	c := benchJob(b, dir)
	d, err := job.LoadData(context.Background(), c)
	if err != nil {
		b.Fatal(err)
	}
	steps := c.Pretrain.Epochs * experiment.PretrainSteps(c, len(d.Split.Train))
	var proc, w1, w2 time.Duration    // wall time per step
	var cproc, cw1, cw2 time.Duration // CPU time of this process per step
	for b.Loop() {
		cpu := cpuTime()
		proc += processPretrain(b, c, d) / time.Duration(steps)
		cpu, cproc = cpuTime(), cproc+(cpuTime()-cpu)/time.Duration(steps)
		took, done := clusterPretrain(b, c, 1)
		w1 += took / time.Duration(done)
		cpu, cw1 = cpuTime(), cw1+(cpuTime()-cpu)/time.Duration(steps)
		took, done = clusterPretrain(b, c, 2)
		w2 += took / time.Duration(done)
		cw2 += (cpuTime() - cpu) / time.Duration(steps)
	}
	n := float64(b.N)
	b.ReportMetric(proc.Seconds()/n, "process-s/step")
	b.ReportMetric(w1.Seconds()/n, "1worker-s/step")
	b.ReportMetric(w2.Seconds()/n, "2workers-s/step")
	b.ReportMetric(w1.Seconds()/proc.Seconds(), "1worker/process")
	b.ReportMetric(w2.Seconds()/proc.Seconds(), "2workers/process")
	b.ReportMetric(cw1.Seconds()/cproc.Seconds(), "1worker-cpu/process")
	b.ReportMetric(cw2.Seconds()/cproc.Seconds(), "2workers-cpu/process")
}

// cpuTime is the user+system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processPretrain is the single-process baseline on all cores.
func processPretrain(b *testing.B, c job.Config, d *job.Data) time.Duration {
	prev := model.SetThreads(runtime.GOMAXPROCS(0))
	defer model.SetThreads(prev)
	st, err := experiment.NewPretrainState(c, len(d.Set.Classes))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := experiment.Pretrain(context.Background(), c, d, st, nil, nil); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// clusterPretrain runs the job's pretraining on a one-node coordinator and n
// in-process workers and returns the time from the first completed step to
// the end of pretraining and the steps in that time.
func clusterPretrain(b *testing.B, c job.Config, n int) (time.Duration, int) {
	lc, client := startCoordinators(b, 1)
	defer lc.Close() // after the workers left; the job's later phases must not run on
	ws := newWorkers(b, lc.Addrs())
	defer ws.stopAll()
	for i := range n {
		ws.startThreads(fmt.Sprintf("w%d", i), worker.DataLocal, "", max(1, runtime.GOMAXPROCS(0)/n))
	}
	if _, err := client.SubmitJob(context.Background(), c.JSON()); err != nil {
		b.Fatal(err)
	}
	var first time.Time
	var firstDone int
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		s, err := client.JobStatus(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		switch {
		case s.GetPhase() == pb.Phase_PHASE_FAILED:
			b.Fatalf("job failed: %s", s.GetFailureReason())
		case s.GetPhase() == pb.Phase_PHASE_PRETRAINING && first.IsZero() && stepsDone(s) > 0:
			first, firstDone = time.Now(), stepsDone(s)
		case s.GetPhase() > pb.Phase_PHASE_PRETRAINING && !first.IsZero():
			total := int(s.GetTotalEpochs()) * int(s.GetTotalSteps())
			return time.Since(first), total - firstDone
		}
		time.Sleep(100 * time.Millisecond) // polling must not steal the workers' cores
	}
	b.Fatal("pretraining did not finish within 10 minutes")
	return 0, 0
}
