package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
)

// Worker is one training process of a job: it registers with the
// coordinator, heartbeats, trains its part of every step in the ring of the
// current generation and leaves gracefully when its context ends.
type Worker struct {
	cfg Config
	log *slog.Logger
	met *metrics
	tr  atomic.Pointer[trainer] // the running loop, for position
	// lanes are the members' identities per generation (set in Run).
	lanes *laneIdentities
}

// position returns the next step the worker will train (tests wait on it).
func (w *Worker) position() job.Position {
	t := w.tr.Load()
	if t == nil {
		return job.Position{}
	}
	hb := t.heartbeatInfo()
	return job.Position{Epoch: hb.Epoch, Step: hb.Step}
}

// parts are what a worker trains with: the real ones come from Run, the
// tests pass in-memory ones.
type parts struct {
	coord    Coordinator
	rings    RingFactory
	replicas ReplicaFactory
	ringAddr string
	// crash, when set, skips the graceful leave (tests simulate kill -9).
	crash *atomic.Bool
}

// train registers, then runs the heartbeat and the training loop until ctx is
// done, then leaves: the heartbeat stops first so that it cannot register
// the worker again after it left.
func (w *Worker) train(ctx context.Context, p parts) error {
	t := newTrainer(w.cfg.ID, p.ringAddr, p.coord, p.rings, p.replicas, w.log, w.met)
	w.tr.Store(t)
	reg, err := t.register(ctx)
	if err != nil {
		return nil // ctx done before the coordinator answered
	}
	every := w.cfg.Heartbeat
	if reg.Heartbeat > 0 && reg.Heartbeat < every {
		every = reg.Heartbeat
	}
	if reg.Lease > 0 && every > reg.Lease/3 {
		every = reg.Lease / 3
	}
	if reg.Lease > 0 {
		t.stuckAfter = 3 * reg.Lease
	}
	// A newer process registered with this id ends this one (fenced).
	ctx, fence := context.WithCancelCause(ctx)
	defer fence(nil)
	t.fence = fence
	hctx, stopHeartbeat := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = t.heartbeat(hctx, every) })
	err = t.run(ctx)
	stopHeartbeat()
	wg.Wait()
	if cause := context.Cause(ctx); errors.Is(cause, client.ErrReplaced) {
		return fmt.Errorf("worker %s stops: %w", w.cfg.ID, cause) // no leave: the id is the other process's now
	}
	if p.crash == nil || !p.crash.Load() {
		w.leave(p.coord)
	}
	return err
}

// leave deregisters the worker within LeaveTimeout.
func (w *Worker) leave(c Coordinator) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LeaveTimeout)
	defer cancel()
	start := time.Now()
	if err := c.Leave(ctx, w.cfg.ID); err != nil {
		w.log.Warn("leave", "err", err)
		return
	}
	w.log.Info("left the job", "took", time.Since(start))
}
