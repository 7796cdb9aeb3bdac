package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/worker"
)

// Cluster is a raft coordinator group (coordinator.StartLocal) and
// workers in this process, talking gRPC over loopback like a deployed
// cluster, with mutual TLS and throwaway identities (Certs).
type Cluster struct {
	coords  *coordinator.LocalCluster
	workers sync.WaitGroup
	stopW   context.CancelFunc
	errs    chan error
	log     *slog.Logger
	certs   *Certs
}

// Client returns a client of the coordinators holding the run's client
// identity.
func (lc *Cluster) Client(log *slog.Logger) (*client.Client, error) {
	f, err := lc.certs.Files(identity.Client, "whorl-run")
	if err != nil {
		return nil, err
	}
	tc, err := tlsfiles.Load(f)
	if err != nil {
		return nil, err
	}
	return lc.coords.Client(log, tc.Client)
}

// ClusterConfig sizes a Cluster.
type ClusterConfig struct {
	// Coordinators and Workers are how many of each run in the process.
	Coordinators, Workers int
	// DataDir is the photo folder the workers load ("": the embedded set).
	DataDir string
}

// StartCluster starts the coordinators on the ports remembered in dir (so a
// rerun restarts raft on the addresses its log remembers), running the
// non-distributed phases with phases, and then the workers. On any failure
// everything started is stopped again.
func StartCluster(ctx context.Context, dir string, cc ClusterConfig, phases coordinator.Phases, log *slog.Logger) (*Cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	certs, err := OpenCerts(filepath.Join(dir, "certs"))
	if err != nil {
		return nil, fmt.Errorf("the local cluster's certificates: %w", err)
	}
	var certErr error
	nodeTLS := func(id string) coordinator.TLSFiles {
		f, err := certs.Files(identity.Coordinator, id)
		certErr = errors.Join(certErr, err)
		return f
	}
	base := coordinator.DefaultConfig()
	base.Phases, base.Logger = AllCores{phases}, log
	coords, err := coordinator.StartLocal(dir, cc.Coordinators, base, coordinator.RememberPorts(filepath.Join(dir, "ports.json")),
		coordinator.NodeTLS(nodeTLS))
	if err != nil || certErr != nil {
		return nil, fmt.Errorf("start the coordinators: %w", errors.Join(err, certErr))
	}
	lc := &Cluster{coords: coords, errs: make(chan error, cc.Workers), log: log, certs: certs}
	if err := lc.startWorkers(ctx, cc); err != nil {
		lc.Stop()
		return nil, err
	}
	return lc, nil
}

// AllCores runs the coordinators' phases (baseline, fine-tuning and the
// evaluations) on every core. In this one-process cluster each worker sets
// the engine's thread count, which is process-wide, to its share of the
// cores for pretraining (model.SetThreads); the phases come after
// pretraining, while the workers wait, and would otherwise run on one
// worker's share.
type AllCores struct{ coordinator.Phases }

// Baseline runs the baseline phase with every core.
func (p AllCores) Baseline(ctx context.Context, configJSON []byte) ([]byte, error) {
	defer model.SetThreads(model.SetThreads(runtime.GOMAXPROCS(0)))
	return p.Phases.Baseline(ctx, configJSON)
}

// CheckData passes the submit-time data check on to the phases that have
// one (coordinator.DataChecker).
func (p AllCores) CheckData(ctx context.Context, configJSON []byte) error {
	if dc, ok := p.Phases.(coordinator.DataChecker); ok {
		return dc.CheckData(ctx, configJSON)
	}
	return nil
}

// FineTune runs the fine-tuning phase with every core.
func (p AllCores) FineTune(ctx context.Context, configJSON, pretrained, baselineJSON []byte, pretext []job.EpochStat) ([]byte, error) {
	defer model.SetThreads(model.SetThreads(runtime.GOMAXPROCS(0)))
	return p.Phases.FineTune(ctx, configJSON, pretrained, baselineJSON, pretext)
}

// startWorkers starts the workers, each with an equal share of the cores.
func (lc *Cluster) startWorkers(ctx context.Context, cc ClusterConfig) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	lc.stopW = cancel
	threads := max(1, runtime.GOMAXPROCS(0)/max(1, cc.Workers))
	var err error
	for i := range cc.Workers {
		cfg := worker.DefaultConfig()
		cfg.ID, cfg.Coordinators, cfg.Listen = fmt.Sprintf("w%d", i), lc.coords.Addrs(), "127.0.0.1:0"
		cfg.Data, cfg.DataDir, cfg.Threads = worker.DataLocal, cc.DataDir, threads
		cfg.Logger = lc.log // the worker names itself
		if cfg.TLS, err = lc.certs.Files(identity.Worker, cfg.ID); err != nil {
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

// Stop shuts down in reverse dependency order: the workers leave (each Run
// deregisters from the coordinators, which still answer, before it
// returns), then the coordinators stop.
func (lc *Cluster) Stop() {
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

// Addrs are the coordinators' gRPC addresses.
func (lc *Cluster) Addrs() []string { return lc.coords.Addrs() }

// Certs are the cluster's throwaway identities (a caller's own client
// certificate comes from them).
func (lc *Cluster) Certs() *Certs { return lc.certs }
