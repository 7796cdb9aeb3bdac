package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/worker"
)

func init() { clusterRunner = runOnCluster }

// clusterPorts are the loopback ports of a local cluster, kept in --out so a
// rerun restarts raft on the addresses its log remembers.
type clusterPorts struct {
	Raft []int `json:"raft"`
	GRPC []int `json:"grpc"`
}

// localCluster is a raft coordinator group and workers in this process,
// talking gRPC over loopback like a deployed cluster.
type localCluster struct {
	nodes   []*coordinator.Node
	addrs   []string
	workers int
	data    string

	wg       sync.WaitGroup
	errs     chan error
	stopWork context.CancelFunc
	stopCoor context.CancelFunc
	log      *slog.Logger
}

// listenPorts listens on the remembered ports (or fresh ones) and saves them.
func listenPorts(dir string, n int) (raft, grpc []net.Listener, err error) {
	path := filepath.Join(dir, "ports.json")
	var ports clusterPorts
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &ports) == nil && len(ports.Raft) == n && len(ports.GRPC) == n {
		raft, grpc = make([]net.Listener, n), make([]net.Listener, n)
		for i := range n {
			if raft[i], err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports.Raft[i])); err != nil {
				return nil, nil, fmt.Errorf("resume the local cluster in %s: raft port %d: %w (is another whorl run using this --out?)", dir, ports.Raft[i], err)
			}
			if grpc[i], err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports.GRPC[i])); err != nil {
				return nil, nil, fmt.Errorf("resume the local cluster in %s: gRPC port %d: %w", dir, ports.GRPC[i], err)
			}
		}
		return raft, grpc, nil
	}
	ports = clusterPorts{}
	for range n {
		r, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen on loopback: %w", err)
		}
		g, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen on loopback: %w", err)
		}
		raft, grpc = append(raft, r), append(grpc, g)
		ports.Raft = append(ports.Raft, r.Addr().(*net.TCPAddr).Port)
		ports.GRPC = append(ports.GRPC, g.Addr().(*net.TCPAddr).Port)
	}
	b, _ := json.Marshal(ports)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, nil, fmt.Errorf("save the cluster ports: %w", err)
	}
	return raft, grpc, nil
}

// startCluster starts the coordinators and, once a leader is elected, the
// workers.
func startCluster(ctx context.Context, dir string, o runOptions, c job.Config, r *experiment.Runner, log *slog.Logger) (*localCluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	rls, gls, err := listenPorts(dir, o.coordinators)
	if err != nil {
		return nil, err
	}
	lc := &localCluster{workers: o.workers, data: c.Data.Dir, errs: make(chan error, o.coordinators+o.workers), log: log}
	var peers []coordinator.Peer
	for i := range rls {
		peers = append(peers, coordinator.Peer{ID: fmt.Sprintf("c%d", i), RaftAddr: rls[i].Addr().String()})
		lc.addrs = append(lc.addrs, gls[i].Addr().String())
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	lc.stopCoor = cancel
	for i := range rls {
		cfg := coordinator.DefaultConfig()
		cfg.ID, cfg.DataDir = peers[i].ID, filepath.Join(dir, peers[i].ID)
		cfg.RaftAddr, cfg.GRPCAddr = rls[i].Addr().String(), gls[i].Addr().String()
		cfg.RaftListener, cfg.GRPCListener = rls[i], gls[i]
		if len(peers) > 1 {
			cfg.Peers = peers
		}
		cfg.Phases, cfg.Logger = r, log.With("coordinator", cfg.ID)
		n, err := coordinator.New(cfg)
		if err != nil {
			cancel()
			lc.wait()
			return nil, fmt.Errorf("start coordinator %s: %w", cfg.ID, err)
		}
		lc.nodes = append(lc.nodes, n)
		lc.wg.Go(func() { lc.errs <- n.Run(cctx) })
	}
	return lc, lc.startWorkers(ctx, o)
}

// startWorkers starts the workers, each with an equal share of the cores.
func (lc *localCluster) startWorkers(ctx context.Context, o runOptions) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	lc.stopWork = cancel
	threads := max(1, runtime.GOMAXPROCS(0)/o.workers)
	for i := range o.workers {
		cfg := worker.DefaultConfig()
		cfg.ID, cfg.Coordinators, cfg.Listen = fmt.Sprintf("w%d", i), lc.addrs, "127.0.0.1:0"
		cfg.Data, cfg.DataDir, cfg.Threads = worker.DataLocal, lc.data, threads
		cfg.Logger = lc.log // the worker names itself
		w, err := worker.New(cfg)
		if err != nil {
			return fmt.Errorf("start worker %s: %w", cfg.ID, err)
		}
		lc.wg.Go(func() { lc.errs <- w.Run(wctx) })
	}
	return nil
}

// stop shuts down in reverse dependency order: workers leave first, then
// the coordinators stop.
func (lc *localCluster) stop() {
	if lc.stopWork != nil {
		lc.stopWork()
	}
	// Let the workers leave while the coordinators still answer.
	time.Sleep(200 * time.Millisecond)
	lc.wait()
}

func (lc *localCluster) wait() {
	if lc.stopWork != nil {
		lc.stopWork()
	}
	lc.stopCoor()
	lc.wg.Wait()
	close(lc.errs)
	for err := range lc.errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			lc.log.Warn("shutdown", "err", err)
		}
	}
}

// runOnCluster submits the job (or follows the one a previous run left in
// --out) and waits for its report.
func runOnCluster(ctx context.Context, w io.Writer, o runOptions, c job.Config, r *experiment.Runner, p *progressPrinter) (experiment.Report, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if lf, err := os.OpenFile(filepath.Join(o.out, "cluster.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		defer lf.Close()
		log = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	dir := filepath.Join(o.out, "cluster")
	_, statErr := os.Stat(filepath.Join(dir, "ports.json"))
	lc, err := startCluster(ctx, dir, o, c, r, log)
	if err != nil {
		return experiment.Report{}, err
	}
	defer lc.stop()
	client, err := coordinator.NewClient(coordinator.ClientConfig{Addrs: lc.addrs, Logger: log})
	if err != nil {
		return experiment.Report{}, err
	}
	defer client.Close()
	jobID, err := submitOrResume(ctx, w, client, c, statErr == nil)
	if err != nil {
		return experiment.Report{}, err
	}
	if err := follow(ctx, client, p); err != nil {
		return experiment.Report{}, err
	}
	res, err := client.FetchResults(ctx, jobID)
	if err != nil {
		return experiment.Report{}, fmt.Errorf("fetch the results of %s: %w", jobID, err)
	}
	if res.GetPhase() != pb.Phase_PHASE_DONE {
		return experiment.Report{}, fmt.Errorf("job %s %s: %s", jobID, res.GetPhase().Label(), res.GetFailureReason())
	}
	var rep experiment.Report
	if err := json.Unmarshal(res.GetReportJson(), &rep); err != nil {
		return experiment.Report{}, fmt.Errorf("decode the report of %s: %w", jobID, err)
	}
	return rep, nil
}

// submitOrResume follows the job already in the cluster's state (a rerun
// with the same --out, whose configuration runExperiment checked), else
// submits c. Right after a restart the replicated state may not yet show
// the old job; its submission is then refused as ErrJobRunning and retried.
func submitOrResume(ctx context.Context, w io.Writer, client *coordinator.Client, c job.Config, resuming bool) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; ; attempt++ {
		st, err := client.JobStatus(ctx)
		if resuming && (err != nil || st.GetJobId() == "") && time.Now().Before(deadline) {
			// A restarted raft group shows its job once the leader has
			// applied its log; wait for it rather than submit again.
			if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
				return "", err
			}
			continue
		}
		if err == nil && st.GetJobId() != "" && st.GetPhase() != pb.Phase_PHASE_FAILED {
			fmt.Fprintf(w, "resuming job %s (phase %s, epoch %d/%d, step %d)\n", st.GetJobId(), st.GetPhase().Label(),
				min(st.GetEpoch()+1, st.GetTotalEpochs()), st.GetTotalEpochs(), st.GetNextStep())
			return st.GetJobId(), nil
		}
		id, err := client.SubmitJob(ctx, c.JSON())
		if err == nil {
			fmt.Fprintf(w, "submitted job %s\n", id)
			return id, nil
		}
		if !errors.Is(err, coordinator.ErrJobRunning) || attempt >= 40 {
			return "", fmt.Errorf("submit the job: %w", err)
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// follow polls the job status until it is done or failed, reporting
// pretraining progress.
func follow(ctx context.Context, client *coordinator.Client, p *progressPrinter) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	tr := newPretrainTracker(p)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		st, err := client.JobStatus(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // elections and restarts: the client retries
		}
		switch st.GetPhase() {
		case pb.Phase_PHASE_DONE, pb.Phase_PHASE_FAILED:
			return nil
		case pb.Phase_PHASE_PRETRAINING:
			tr.update(st)
		case pb.Phase_PHASE_BASELINE, pb.Phase_PHASE_FINETUNING:
			tr.finish(st)
		}
	}
}

// pretrainTracker follows distributed pretraining through job statuses:
// it shows the progress of the running epoch from the recent step metrics
// and a line for every epoch the coordinator's history completes. (The
// report's pretext history comes from the coordinator, through FineTune.)
type pretrainTracker struct {
	p       *progressPrinter
	steps   map[[2]uint32]seenStep // by epoch and step
	shown   uint32                 // epochs reported as done
	started bool                   // a status was seen
}

// seenStep is what a status said of one completed step.
type seenStep struct {
	loss, accuracy float64
	samples        int
	at             time.Time
}

func newPretrainTracker(p *progressPrinter) *pretrainTracker {
	return &pretrainTracker{p: p, steps: map[[2]uint32]seenStep{}}
}

// update records a status during pretraining.
func (t *pretrainTracker) update(st *pb.JobStatusResponse) {
	if !t.started { // a resumed job: the epochs done before are not shown again
		t.started, t.shown = true, min(st.GetEpoch(), st.GetTotalEpochs())
	}
	for _, m := range st.GetRecent() {
		t.steps[[2]uint32{m.GetEpoch(), m.GetStep()}] = seenStep{loss: float64(m.GetLoss()),
			accuracy: float64(m.GetAccuracy()), samples: int(m.GetSamples()), at: m.GetTime().AsTime()}
	}
	t.finish(st)
	if st.GetEpoch() >= st.GetTotalEpochs() {
		return
	}
	e := t.epochStats(st.GetEpoch(), 30*time.Second)
	t.p.event(experiment.Event{Phase: "pretrain", Epoch: int(st.GetEpoch()) + 1, Epochs: int(st.GetTotalEpochs()),
		Step: int(st.GetNextStep()), Steps: max(1, int(st.GetTotalSteps())), Loss: e.loss, Accuracy: e.accuracy,
		SamplesPerSec: e.sps})
}

// finish shows the epochs of the status's history not shown yet.
func (t *pretrainTracker) finish(st *pb.JobStatusResponse) {
	steps := max(1, int(st.GetTotalSteps()))
	for _, e := range st.GetPretextHistory() {
		if e.GetEpoch() <= t.shown {
			continue
		}
		t.shown = e.GetEpoch()
		t.p.event(experiment.Event{Phase: "pretrain", Epoch: int(e.GetEpoch()), Epochs: int(st.GetTotalEpochs()),
			Step: steps, Steps: steps, Loss: float64(e.GetLoss()), Accuracy: float64(e.GetAccuracy()), EpochDone: true})
	}
}

// epochSummary is an epoch's mean loss and accuracy over its seen steps
// and the samples per second of its recent steps.
type epochSummary struct{ loss, accuracy, sps float64 }

// epochStats summarises an epoch's seen steps, with the samples per second
// over the steps of the last window (0: none).
func (t *pretrainTracker) epochStats(epoch uint32, window time.Duration) epochSummary {
	var e epochSummary
	var n, samples int
	var first, last time.Time
	for k, s := range t.steps {
		if k[0] != epoch {
			continue
		}
		e.loss += s.loss
		e.accuracy += s.accuracy
		n++
		if window > 0 && time.Since(s.at) < window {
			samples += s.samples
			if first.IsZero() || s.at.Before(first) {
				first = s.at
			}
			if s.at.After(last) {
				last = s.at
			}
		}
	}
	if n > 0 {
		e.loss /= float64(n)
		e.accuracy /= float64(n)
	}
	if span := last.Sub(first).Seconds(); span > 0 {
		e.sps = float64(samples) / span
	}
	return e
}
