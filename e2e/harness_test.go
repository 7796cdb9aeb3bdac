package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/shard/shardtest"
	"github.com/whorl-ml/whorl/worker"
)

// logger logs to stderr when WHORL_TEST_LOG is set, else nowhere.
func logger(name string) *slog.Logger {
	if os.Getenv("WHORL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", name)
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// tinyDataDir writes perClass photos of each of classes classes of the
// embedded set into a folder (one sub-folder per class) and returns it.
func tinyDataDir(t testing.TB, classes, perClass int) string {
	return shardtest.EmbeddedFolder(t, classes, perClass)
}

// tinyJob is a short job on dir: the small network at 16 px, epochs of
// global batches of 8 images, a checkpoint every 2 steps, one supervised
// epoch.
func tinyJob(t testing.TB, dir string, epochs int) job.Config {
	t.Helper()
	c := job.DefaultConfig()
	c.Data.Dir, c.Data.ImageSize = dir, 16
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch = epochs, 8
	c.CheckpointEvery = 2
	c.Supervised.Epochs, c.Supervised.Batch = 1, 4
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// jobFile writes c as a job config file for `whorl run --job-config`.
func jobFile(t testing.TB, c job.Config) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(name, c.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// startCoordinators starts n coordinators in this process with the default
// worker timings (heartbeat 1 s, lease 3 s).
func startCoordinators(t testing.TB, n int) (*coordinator.LocalCluster, *client.Client) {
	t.Helper()
	base := coordinator.DefaultConfig()
	base.Phases = &experiment.Runner{}
	base.Logger = logger("coordinator")
	base.AssignmentWait = 2 * time.Second
	lc, err := coordinator.StartLocal(t.TempDir(), n, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	cl, err := dialClient(lc.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return lc, cl
}

// workers runs in-process workers (real gRPC ring servers on loopback).
type workers struct {
	t     testing.TB
	addrs []string
	mu    sync.Mutex
	stops map[string]func()
}

func newWorkers(t testing.TB, coordinators []string) *workers {
	ws := &workers{t: t, addrs: coordinators, stops: map[string]func(){}}
	t.Cleanup(ws.stopAll)
	return ws
}

// start runs worker id reading its images as source says, on one thread.
func (ws *workers) start(id, source, dataDir string) { ws.startThreads(id, source, dataDir, 1) }

// startThreads runs worker id with threads compute goroutines.
func (ws *workers) startThreads(id, source, dataDir string, threads int) {
	cfg := worker.DefaultConfig()
	cfg.ID, cfg.Coordinators, cfg.Listen = id, ws.addrs, "127.0.0.1:0"
	cfg.Data, cfg.DataDir, cfg.Threads = source, dataDir, threads
	cfg.AssignmentWait, cfg.Logger = 2*time.Second, logger(id)
	w, err := worker.New(cfg)
	if err != nil {
		ws.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	ws.mu.Lock()
	ws.stops[id] = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				ws.t.Errorf("worker %s: %v", id, err)
			}
		case <-time.After(15 * time.Second):
			ws.t.Errorf("worker %s did not stop within 15s", id)
		}
	}
	ws.mu.Unlock()
}

// stop stops worker id gracefully (SIGTERM: it leaves).
func (ws *workers) stop(id string) {
	ws.mu.Lock()
	f := ws.stops[id]
	delete(ws.stops, id)
	ws.mu.Unlock()
	if f != nil {
		f()
	}
}

func (ws *workers) stopAll() {
	ws.mu.Lock()
	var ids []string
	for id := range ws.stops {
		ids = append(ids, id)
	}
	ws.mu.Unlock()
	for _, id := range ids {
		ws.stop(id)
	}
}

// status returns the job status, failing the test on error.
func status(t testing.TB, c *client.Client) *pb.JobStatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.JobStatus(ctx)
	if err != nil {
		t.Fatalf("job status: %v", err)
	}
	return s
}

// waitUntil polls cond every 50 ms up to limit and returns how long it took.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// stepsDone is the number of completed steps of the job.
func stepsDone(s *pb.JobStatusResponse) int {
	return int(s.GetEpoch())*int(s.GetTotalSteps()) + int(s.GetNextStep())
}

// phaseIs reports whether the job reached phase (or failed, which fails
// t); every 30 s it logs where the job is.
func phaseIs(t *testing.T, c *client.Client, phase pb.Phase) func() bool {
	return phaseCheck(t, c, func(s *pb.JobStatusResponse) bool { return s.GetPhase() == phase })
}

// pastPretraining reports whether the job left pretraining (a failure fails
// t); every 30 s it logs where the job is.
func pastPretraining(t *testing.T, c *client.Client) func() bool {
	return phaseCheck(t, c, func(s *pb.JobStatusResponse) bool { return s.GetPhase() > pb.Phase_PHASE_PRETRAINING })
}

func phaseCheck(t *testing.T, c *client.Client, done func(*pb.JobStatusResponse) bool) func() bool {
	last := time.Now()
	return func() bool {
		s := status(t, c)
		if s.GetPhase() == pb.Phase_PHASE_FAILED {
			t.Fatalf("job failed: %s", s.GetFailureReason())
		}
		if time.Since(last) > 30*time.Second {
			t.Logf("waiting: %s", describe(s))
			last = time.Now()
		}
		return done(s)
	}
}

// submit submits c and returns the job id.
func submit(t *testing.T, cl *client.Client, c job.Config) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := cl.SubmitJob(ctx, c.JSON())
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return id
}

// describe is a one-line summary of a status for logs.
func describe(s *pb.JobStatusResponse) string {
	return fmt.Sprintf("phase %s epoch %d/%d step %d/%d generation %d workers %d", s.GetPhase().Label(), s.GetEpoch(),
		s.GetTotalEpochs(), s.GetNextStep(), s.GetTotalSteps(), s.GetGeneration(), len(s.GetWorkers()))
}

// dialClient returns a coordinator client of addrs (mTLS with tlsCfg when
// set) logging as "client".
func dialClient(addrs []string, tlsCfg *tls.Config) (*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.TLS, cfg.Logger = addrs, tlsCfg, logger("client")
	return client.New(cfg)
}
