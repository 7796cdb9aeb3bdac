package worker

import (
	"context"
	"errors"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
)

// register registers the worker, retrying until it succeeds or ctx is done
// (the coordinator may start after the worker).
func (t *trainer) register(ctx context.Context) (Registration, error) {
	delay := t.retry
	for {
		reg, err := t.coord.Register(ctx, t.id, t.ringAddr)
		if err == nil {
			t.log.Info("registered", "ring_addr", t.ringAddr, "lease", reg.Lease, "generation", reg.Generation)
			return reg, nil
		}
		if ctx.Err() != nil {
			return Registration{}, ctx.Err()
		}
		t.log.Warn("register", "err", err, "retry_in", delay)
		sleep(ctx, delay)
		delay = min(2*delay, 2*time.Second)
	}
}

// heartbeat renews the lease every interval until ctx is done, learns the
// newest generation (aborting superseded work) and registers again when the
// coordinator lost the worker.
func (t *trainer) heartbeat(ctx context.Context, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		hctx, cancel := context.WithTimeout(ctx, 2*every)
		g, err := t.coord.Heartbeat(hctx, t.heartbeatInfo())
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case t.replaced(err):
			return err
		case errors.Is(err, client.ErrUnknownWorker):
			t.log.Warn("lease lost; registering again")
			if _, err := t.coord.Register(ctx, t.id, t.ringAddr); err != nil {
				t.log.Warn("register again", "err", err)
			}
		case err != nil:
			t.log.Warn("heartbeat", "err", err)
		default:
			t.noteGeneration(g)
		}
	}
}
