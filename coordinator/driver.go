package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
)

// driver moves the current job through its phases. It runs on the leader
// only, and every step starts from the replicated phase, so a new leader
// resumes where the old one stopped (redoing at most the phase in flight,
// which Phases makes deterministic).
type driver struct {
	n *Node
}

// run drives the job until ctx is done (leadership lost or shutdown),
// re-evaluating after every applied entry and every second.
func (d *driver) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		changed := d.n.fsm.Changed()
		if err := d.step(ctx); err != nil && ctx.Err() == nil {
			d.n.log.Warn("job driver", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

// jobView is the part of the job the driver decides on (copied out of the
// state so no lock is held while a phase runs).
type jobView struct {
	id, digest   string
	ckptSize     int64
	phase        Phase
	config       json.RawMessage
	baseline     json.RawMessage
	report       json.RawMessage
	waitingSince time.Time
	pretrainDone bool
	finalCkpt    bool
	epochs       int
	history      []job.EpochStat
}

func (d *driver) view() (jobView, bool) {
	var v jobView
	var ok bool
	d.n.fsm.View(func(s *State) {
		j := s.Job
		if ok = j != nil; !ok {
			return
		}
		v = jobView{id: j.ID, phase: j.Phase, config: j.ConfigJSON, baseline: j.BaselineJSON, report: j.ReportJSON,
			waitingSince: j.WaitingSince, pretrainDone: j.PretrainDone(), finalCkpt: j.FinalCheckpoint(),
			epochs: j.Params.Epochs, history: epochStats(j.History)}
		if j.Checkpoint != nil {
			v.digest, v.ckptSize = j.Checkpoint.Digest, j.Checkpoint.Size
		}
	})
	return v, ok
}

// step does what the current phase needs next.
func (d *driver) step(ctx context.Context) error {
	v, ok := d.view()
	if !ok {
		return nil
	}
	switch v.phase {
	case PhasePending:
		return d.prepare(ctx, v)
	case PhasePretraining:
		return d.pretraining(ctx, v)
	case PhaseBaseline:
		return d.runPhase(ctx, v, PhaseFinetuning, func(ctx context.Context) (*SetPhase, error) {
			res, err := d.n.cfg.Phases.Baseline(ctx, v.config)
			return &SetPhase{Baseline: res}, err
		})
	case PhaseFinetuning:
		return d.runPhase(ctx, v, PhaseEvaluating, func(ctx context.Context) (*SetPhase, error) {
			res, err := d.fineTune(ctx, v)
			if err != nil {
				return nil, err
			}
			arts, err := d.n.storeResults(ctx, v, res) // the files this FineTune wrote, here
			return &SetPhase{Report: res, Artifacts: arts}, err
		})
	case PhaseEvaluating:
		return d.runPhase(ctx, v, PhaseDone, func(context.Context) (*SetPhase, error) {
			if !json.Valid(v.report) || !json.Valid(v.baseline) {
				return nil, fmt.Errorf("evaluate job %s: the baseline or report is not valid JSON", v.id)
			}
			return &SetPhase{}, nil
		})
	}
	return nil
}

// prepare calls Phases.Prepare and starts pretraining.
func (d *driver) prepare(ctx context.Context, v jobView) error {
	if d.n.cfg.Phases == nil {
		return d.fail(ctx, v, "no Phases configured on the coordinator (cannot prepare data)")
	}
	p, err := d.n.prepared(ctx, v.id, v.config)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return d.fail(ctx, v, err.Error())
	}
	_, err = d.n.propose(ctx, &StartPretraining{
		JobID: v.id, ManifestDigest: p.ManifestDigest, TrainIDs: p.TrainIDs, Mean: p.Mean, Std: p.Std, Time: time.Now(),
		LabeledIDs: p.LabeledIDs, LabeledClasses: p.LabeledClasses, Classes: p.Classes,
	})
	if err == nil {
		d.n.log.Info("pretraining started", "job", v.id, "images", len(p.TrainIDs))
	}
	return err
}

// pretraining fails the job when it waited too long for workers and moves
// on once the final checkpoint is committed.
func (d *driver) pretraining(ctx context.Context, v jobView) error {
	if !v.waitingSince.IsZero() && time.Since(v.waitingSince) > d.n.cfg.WorkerWait {
		return d.fail(ctx, v, fmt.Sprintf("no workers for %v (bound %v)", time.Since(v.waitingSince).Round(time.Second), d.n.cfg.WorkerWait))
	}
	if v.digest != "" {
		if err := d.n.ensureBlob(ctx, v.digest); errors.Is(err, client.ErrBlobNotFound) {
			return d.fail(ctx, v, fmt.Sprintf("the committed checkpoint cannot be read: %v; no coordinator holds an intact copy, so pretraining cannot resume from it (restore the file, or start over in a new output folder)", err))
		}
	}
	if !v.pretrainDone || (!v.finalCkpt && v.epochs > 0) {
		return nil
	}
	_, err := d.n.propose(ctx, &SetPhase{JobID: v.id, From: PhasePretraining, To: PhaseBaseline, Time: time.Now()})
	if err == nil {
		d.n.log.Info("pretraining done", "job", v.id, "checkpoint", v.digest)
	}
	return err
}

// fineTune loads the pretrained checkpoint (fetching it from a peer when
// needed) and runs Phases.FineTune.
func (d *driver) fineTune(ctx context.Context, v jobView) ([]byte, error) {
	if v.digest == "" { // no pretraining epochs: fine-tune from scratch
		return d.n.cfg.Phases.FineTune(ctx, v.config, nil, v.baseline, v.history)
	}
	if err := d.n.ensureBlob(ctx, v.digest); err != nil {
		return nil, err
	}
	data, err := d.n.blobs.ReadAll(v.digest)
	if err != nil {
		return nil, err
	}
	return d.n.cfg.Phases.FineTune(ctx, v.config, data, v.baseline, v.history)
}

// runPhase runs one non-distributed phase and commits its result and the
// next phase; a phase error fails the job with the error as the reason. fn
// runs under a context that ends when the job leaves the phase (a cancel).
func (d *driver) runPhase(ctx context.Context, v jobView, next Phase, fn func(context.Context) (*SetPhase, error)) error {
	if d.n.cfg.Phases == nil {
		return d.fail(ctx, v, "no Phases configured on the coordinator")
	}
	d.n.log.Info("phase started", "job", v.id, "phase", v.phase)
	start := time.Now()
	// A new leader prepares the job first (once per job on this node), as
	// the leader that ran pretraining did: Phases may rely on it.
	_, err := d.n.prepared(ctx, v.id, v.config)
	var c *SetPhase
	if err == nil {
		pctx, cancel := d.n.phaseContext(ctx, v.id, v.phase)
		c, err = fn(pctx)
		left := pctx.Err() != nil && ctx.Err() == nil
		cancel()
		if left {
			d.n.log.Info("phase stopped: the job left it", "job", v.id, "phase", v.phase)
			return nil
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return d.fail(ctx, v, fmt.Sprintf("%s: %v", v.phase, err))
	}
	c.JobID, c.From, c.To, c.Time = v.id, v.phase, next, time.Now()
	if _, err := d.n.propose(ctx, c); err != nil {
		return err
	}
	d.n.log.Info("phase finished", "job", v.id, "phase", v.phase, "next", next, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// fail ends the job with a reason.
func (d *driver) fail(ctx context.Context, v jobView, reason string) error {
	d.n.log.Error("job failed", "job", v.id, "phase", v.phase, "reason", reason)
	_, err := d.n.propose(ctx, &SetPhase{JobID: v.id, From: v.phase, To: PhaseFailed, Reason: reason, Time: time.Now()})
	if errors.Is(err, client.ErrWrongPhase) {
		return nil // another path moved the job on
	}
	return err
}

// epochStats converts the replicated epoch summaries for Phases.FineTune.
func epochStats(h []EpochMetric) []job.EpochStat {
	out := make([]job.EpochStat, len(h))
	for i, e := range h {
		out[i] = e.Stat()
	}
	return out
}
