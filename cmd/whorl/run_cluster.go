package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/worker"
)

// localCluster is a raft coordinator group (coordinator.StartLocal) and
// workers in this process, talking gRPC over loopback like a deployed
// cluster, with mutual TLS and throwaway identities (localCerts).
type localCluster struct {
	coords  *coordinator.LocalCluster
	workers sync.WaitGroup
	stopW   context.CancelFunc
	errs    chan error
	log     *slog.Logger
	certs   *localCerts
}

// client returns a client of the coordinators holding the run's client
// identity.
func (lc *localCluster) client(log *slog.Logger) (*client.Client, error) {
	f, err := lc.certs.files(identity.Client, "whorl-run")
	if err != nil {
		return nil, err
	}
	tc, err := tlsfiles.Load(f)
	if err != nil {
		return nil, err
	}
	return lc.coords.Client(log, tc.Client)
}

// startCluster starts the coordinators on the ports remembered in dir (so a
// rerun restarts raft on the addresses its log remembers) and then the
// workers. On any failure everything started is stopped again.
func startCluster(ctx context.Context, dir string, o runOptions, c job.Config, phases coordinator.Phases, log *slog.Logger) (*localCluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	certs, err := newLocalCerts(filepath.Join(dir, "certs"))
	if err != nil {
		return nil, fmt.Errorf("the local cluster's certificates: %w", err)
	}
	var certErr error
	nodeTLS := func(id string) coordinator.TLSFiles {
		f, err := certs.files(identity.Coordinator, id)
		certErr = errors.Join(certErr, err)
		return f
	}
	base := coordinator.DefaultConfig()
	base.Phases, base.Logger = allCores{phases}, log
	coords, err := coordinator.StartLocal(dir, o.coordinators, base, coordinator.RememberPorts(filepath.Join(dir, "ports.json")),
		coordinator.NodeTLS(nodeTLS))
	if err != nil || certErr != nil {
		return nil, fmt.Errorf("start the coordinators: %w", errors.Join(err, certErr))
	}
	lc := &localCluster{coords: coords, errs: make(chan error, o.workers), log: log, certs: certs}
	if err := lc.startWorkers(ctx, o, c.Data.Dir); err != nil {
		lc.stop()
		return nil, err
	}
	return lc, nil
}

// allCores runs the coordinators' phases (baseline, fine-tuning and the
// evaluations) on every core. In this one-process cluster each worker sets
// the engine's thread count, which is process-wide, to its share of the
// cores for pretraining (model.SetThreads); the phases come after
// pretraining, while the workers wait, and would otherwise run on one
// worker's share.
type allCores struct{ coordinator.Phases }

// Baseline runs the baseline phase with every core.
func (p allCores) Baseline(ctx context.Context, configJSON []byte) ([]byte, error) {
	defer model.SetThreads(model.SetThreads(runtime.GOMAXPROCS(0)))
	return p.Phases.Baseline(ctx, configJSON)
}

// FineTune runs the fine-tuning phase with every core.
func (p allCores) FineTune(ctx context.Context, configJSON, pretrained, baselineJSON []byte, pretext []job.EpochStat) ([]byte, error) {
	defer model.SetThreads(model.SetThreads(runtime.GOMAXPROCS(0)))
	return p.Phases.FineTune(ctx, configJSON, pretrained, baselineJSON, pretext)
}

// startWorkers starts the workers, each with an equal share of the cores.
func (lc *localCluster) startWorkers(ctx context.Context, o runOptions, data string) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	lc.stopW = cancel
	threads := max(1, runtime.GOMAXPROCS(0)/o.workers)
	var err error
	for i := range o.workers {
		cfg := worker.DefaultConfig()
		cfg.ID, cfg.Coordinators, cfg.Listen = fmt.Sprintf("w%d", i), lc.coords.Addrs(), "127.0.0.1:0"
		cfg.Data, cfg.DataDir, cfg.Threads = worker.DataLocal, data, threads
		cfg.Logger = lc.log // the worker names itself
		if cfg.TLS, err = lc.certs.files(identity.Worker, cfg.ID); err != nil {
			return err
		}
		w, err := worker.New(cfg)
		if err != nil {
			return fmt.Errorf("start worker %s: %w", cfg.ID, err)
		}
		lc.workers.Go(func() { lc.errs <- w.Run(wctx) })
	}
	return nil
}

// stop shuts down in reverse dependency order: the workers leave (each Run
// deregisters from the coordinators, which still answer, before it
// returns), then the coordinators stop.
func (lc *localCluster) stop() {
	lc.stopW()
	lc.workers.Wait()
	close(lc.errs)
	for err := range lc.errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			lc.log.Warn("worker shutdown", "err", err)
		}
	}
	if err := lc.coords.Close(); err != nil && !errors.Is(err, context.Canceled) {
		lc.log.Warn("coordinator shutdown", "err", err)
	}
}

// clusterSession is a local cluster started for a run in --out (its state
// in --out/cluster, its log in --out/cluster.log) and a client of it.
type clusterSession struct {
	lc        *localCluster
	cl        *client.Client
	logFile   *os.File
	restarted bool // the cluster's folder held a previous run's cluster
}

// openCluster starts the local cluster of the run in out, whose
// coordinators run the non-distributed phases with phases.
func openCluster(ctx context.Context, out string, o runOptions, c job.Config, phases coordinator.Phases) (*clusterSession, error) {
	s := &clusterSession{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if lf, err := os.OpenFile(filepath.Join(out, "cluster.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		s.logFile = lf
		log = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	dir := filepath.Join(out, "cluster")
	_, statErr := os.Stat(filepath.Join(dir, "ports.json"))
	s.restarted = statErr == nil
	lc, err := startCluster(ctx, dir, o, c, phases, log)
	if err != nil {
		s.close()
		return nil, err
	}
	s.lc = lc
	if s.cl, err = lc.client(log); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close stops the client, then the cluster, then closes the log.
func (s *clusterSession) close() {
	if s.cl != nil {
		s.cl.Close()
	}
	if s.lc != nil {
		s.lc.stop()
	}
	if s.logFile != nil {
		s.logFile.Close()
	}
}

// wait follows job id until it is done and returns its report.
func (s *clusterSession) wait(ctx context.Context, id string, p *progressPrinter) (experiment.Report, error) {
	if err := follow(ctx, s.cl, id, p); err != nil {
		return experiment.Report{}, err
	}
	res, err := s.cl.FetchResults(ctx, id)
	if err != nil {
		return experiment.Report{}, fmt.Errorf("fetch the results of %s: %w", id, err)
	}
	if res.GetPhase() != pb.Phase_PHASE_DONE {
		return experiment.Report{}, fmt.Errorf("job %s %s: %s", id, res.GetPhase().Label(), res.GetFailureReason())
	}
	var rep experiment.Report
	if err := json.Unmarshal(res.GetReportJson(), &rep); err != nil {
		return experiment.Report{}, fmt.Errorf("decode the report of %s: %w", id, err)
	}
	return rep, nil
}

// runOnCluster submits the job (or follows the one a previous run left in
// --out) to the run's local cluster and waits for its report.
func runOnCluster(ctx context.Context, w io.Writer, o runOptions, c job.Config, r *experiment.Runner, p *progressPrinter) (experiment.Report, error) {
	s, err := openCluster(ctx, o.out, o, c, r)
	if err != nil {
		return experiment.Report{}, err
	}
	defer s.close()
	id, err := submitOrResume(ctx, w, s.cl, c, s.restarted, "")
	if err != nil {
		return experiment.Report{}, err
	}
	return s.wait(ctx, id, p)
}

// submitOrResume follows the job already in the cluster's state (a rerun
// with the same --out, whose configuration runExperiment checked) when it
// is want (any job for ""), else submits c. Right after a restart the
// replicated state may not yet show the old job; its submission is then
// refused as ErrJobRunning and retried.
func submitOrResume(ctx context.Context, w io.Writer, cl *client.Client, c job.Config, resuming bool, want string) (string, error) {
	deadline, told := time.Now().Add(30*time.Second), false
	for attempt := 0; ; attempt++ {
		st, err := cl.JobStatus(ctx)
		if resuming && (err != nil || st.GetJobId() == "") && time.Now().Before(deadline) {
			// A restarted raft group shows its job once the leader has
			// applied its log; wait for it rather than submit again.
			if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
				return "", err
			}
			continue
		}
		ours := resuming && st.GetJobId() != "" && (want == "" || st.GetJobId() == want)
		if err == nil && ours && st.GetPhase() != pb.Phase_PHASE_FAILED {
			fmt.Fprintf(w, "resuming job %s (phase %s, epoch %d/%d, step %d)\n", st.GetJobId(), st.GetPhase().Label(),
				min(st.GetEpoch()+1, st.GetTotalEpochs()), st.GetTotalEpochs(), st.GetNextStep())
			return st.GetJobId(), nil
		}
		if err == nil && ours && st.GetPhase() == pb.Phase_PHASE_FAILED && !told {
			told = true
			fmt.Fprintf(w, "job %s failed: %s\nstarting the job again from the beginning\n", st.GetJobId(), st.GetFailureReason())
		}
		id, err := cl.SubmitJob(ctx, c.JSON())
		if err == nil {
			fmt.Fprintf(w, "submitted job %s\n", id)
			return id, nil
		}
		if !errors.Is(err, client.ErrJobRunning) || attempt >= 40 {
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

// follow polls the status of job id until it is done or failed, reporting
// pretraining progress.
func follow(ctx context.Context, cl *client.Client, id string, p *progressPrinter) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	tr := newPretrainTracker(p)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		st, err := cl.JobStatus(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // elections and restarts: the client retries
		}
		if st.GetJobId() != id {
			continue // the state does not show the job yet (a restart)
		}
		if err := storeError(st); err != nil {
			return err
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

// storeError is the coordinator's report that its disk refuses the job's
// state, as an error saying what is kept and how to go on: whorl run stops
// instead of waiting on a job that cannot move past its next checkpoint.
func storeError(st *pb.JobStatusResponse) error {
	e := st.GetStoreError()
	if e == "" {
		return nil
	}
	at := "the start of pretraining"
	if ck := st.GetLatestCheckpoint(); ck != nil {
		at = fmt.Sprintf("the checkpoint of epoch %d, step %d", ck.GetEpoch()+1, ck.GetStep())
	}
	return fmt.Errorf("the coordinator cannot store the job's checkpoints: %s; nothing committed is lost: free space there and rerun the same command to resume from %s", e, at)
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
	t.p.event(experiment.Event{Phase: pb.Phase_PHASE_PRETRAINING, Epoch: int(st.GetEpoch()) + 1, Epochs: int(st.GetTotalEpochs()),
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
		t.p.event(experiment.Event{Phase: pb.Phase_PHASE_PRETRAINING, Epoch: int(e.GetEpoch()), Epochs: int(st.GetTotalEpochs()),
			Step: steps, Steps: steps, Loss: float64(e.GetLoss()), Accuracy: float64(e.GetAccuracy()),
			ClassAccuracy: float64(e.GetClassAccuracy()), EpochDone: true})
	}
}

// epochSummary is an epoch's mean loss and accuracy over its seen steps
// and the samples per second of its recent steps.
type epochSummary struct{ loss, accuracy, sps float64 }

// epochStats summarises an epoch's seen steps by job.EpochMean (the rule
// of the single-process loop and of the coordinator's history: each step
// weighted by its images), with the samples per second over the steps of
// the last window (0: none).
func (t *pretrainTracker) epochStats(epoch uint32, window time.Duration) epochSummary {
	var keys [][2]uint32
	for k := range t.steps {
		if k[0] == epoch {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b [2]uint32) int { return cmp.Compare(a[1], b[1]) })
	steps := make([]job.StepStat, len(keys))
	var samples int
	var first, last time.Time
	for i, k := range keys {
		s := t.steps[k]
		steps[i] = job.StepStat{Images: max(s.samples, 1), Loss: s.loss, Accuracy: s.accuracy}
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
	es := job.EpochMean(int(epoch)+1, steps)
	e := epochSummary{loss: es.Loss, accuracy: es.Accuracy}
	if span := last.Sub(first).Seconds(); span > 0 {
		e.sps = float64(samples) / span
	}
	return e
}
