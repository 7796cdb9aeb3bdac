package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model/recipe"
	"github.com/whorl-ml/whorl/shard"
)

// step trains one global step: local gradients (with synchronised batch
// statistics), the gradient all-reduce, the optimizer step, then the
// checkpoint (rank 0, when due). Ring work runs under gctx, which a
// generation change cancels; on any failure before the all-reduce completed
// the replica is left as it was before the step. The step is reported only
// after a later collective completed here (see flush).
func (t *trainer) step(ctx, gctx context.Context, a Assignment, st StepWork) error {
	start := time.Now()
	state := t.rep.State()
	t.snap = append(t.snap[:0], state...)
	scale := float32(len(st.IDs)) / float32(st.Global)
	t.ring.SetStep(uint64(a.Epoch)<<32 | uint64(st.Step))
	stats, sink, err := t.computeGrads(gctx, a, st, scale)
	if err != nil {
		copy(state, t.snap)
		if dataFault(gctx, err) {
			return fmt.Errorf("%w: images of epoch %d step %d: %w", errFatal, a.Epoch, st.Step, err)
		}
		return fmt.Errorf("gradients of epoch %d step %d: %w", a.Epoch, st.Step, cause(gctx, err))
	}
	reduceStart := time.Now()
	if err := t.reduceGrads(gctx, sink); err != nil {
		copy(state, t.snap)
		return fmt.Errorf("all-reduce of epoch %d step %d: %w", a.Epoch, st.Step, cause(gctx, err))
	}
	if stats, err = t.globalStats(gctx, stats, st, scale, labeledShare(st)); err != nil {
		copy(state, t.snap)
		return fmt.Errorf("all-reduce of epoch %d step %d stats: %w", a.Epoch, st.Step, cause(gctx, err))
	}
	wait := time.Since(reduceStart)
	t.flush(ctx)
	if err := t.rep.Apply(a.Epoch, st.Step, a.TotalSteps); err != nil {
		return fmt.Errorf("%w: optimizer step of epoch %d step %d: %w", errFatal, a.Epoch, st.Step, err)
	}
	t.advance(a, st)
	if t.rank == 0 && checkpointDue(a, st) {
		last := t.progress(a, st, stats, time.Since(start), wait)
		t.checkpoint(ctx, a, &last)
	}
	took := time.Since(start)
	t.met.observeStep(len(st.IDs), stats.Loss, took, wait, len(t.rep.Grads()))
	t.complete(a, st, stats, took, wait)
	return nil
}

// computeGrads runs forward and backward, starting the gradient buckets
// (if the job has them) as backward finishes them; on failure it waits for
// the started ones, as the ring must let go of the buffer first.
func (t *trainer) computeGrads(gctx context.Context, a Assignment, st StepWork, scale float32) (job.StepStat, *buckets, error) {
	var sink *buckets
	if size := t.rep.GradReduce().BucketElems; size > 0 {
		sink = newBuckets(gctx, t.ring, t.rep.Grads(), size)
	}
	stats, err := t.rep.ComputeGrads(gctx, t.ring, gradSink(sink), st, a.Epoch, scale)
	if err != nil && sink != nil {
		_ = sink.wait()
	}
	return stats, sink, err
}

// reduceGrads completes the gradient's sum: the buckets' (started during
// backward), or one all-reduce of the whole buffer without buckets.
func (t *trainer) reduceGrads(ctx context.Context, sink *buckets) error {
	if sink != nil {
		return sink.finish()
	}
	return t.ring.AllReduceSum(ctx, t.rep.Grads())
}

// gradSink is b as a GradSink, nil (not a typed nil) without buckets.
func gradSink(b *buckets) GradSink {
	if b == nil {
		return nil
	}
	return b
}

// globalStats turns this rank's loss and accuracy into the global batch's
// (each rank's weighted by its share of the images, and of the labeled
// images, summed over the ring), so every rank reports what the
// single-process loop would compute for the step.
func (t *trainer) globalStats(ctx context.Context, local job.StepStat, st StepWork, scale, labeled float32) (job.StepStat, error) {
	w := recipe.Weighted(local, scale, labeled)
	t.statBuf = append(t.statBuf[:0], w[:]...)
	if err := t.ring.AllReduceSum(ctx, t.statBuf); err != nil {
		return job.StepStat{}, err
	}
	return recipe.Unweighted([4]float32(t.statBuf), st.Global), nil
}

// labeledShare is this rank's share of the step's labeled images (0
// outside the joint mode).
func labeledShare(st StepWork) float32 {
	if st.LabeledGlobal == 0 {
		return 0
	}
	return float32(len(st.LabeledIDs)) / float32(st.LabeledGlobal)
}

// cause prefers the reason gctx was cancelled (a superseded generation) over
// the error it caused.
func cause(gctx context.Context, err error) error {
	if c := context.Cause(gctx); c != nil && !errors.Is(err, c) {
		return fmt.Errorf("%w (%w)", err, c)
	}
	return err
}

// advance moves the position past step st of the assignment.
func (t *trainer) advance(a Assignment, st StepWork) {
	t.pos = job.Position{Epoch: a.Epoch, Step: st.Step + 1}
	if t.pos.Step >= a.TotalSteps {
		t.pos = job.Position{Epoch: a.Epoch + 1}
	}
}

// checkpointDue reports whether a checkpoint follows step st: every
// CheckpointEvery steps of the epoch and after its last step.
func checkpointDue(a Assignment, st StepWork) bool {
	if st.Step == a.TotalSteps-1 {
		return true
	}
	return a.CheckpointEvery > 0 && (st.Step+1)%a.CheckpointEvery == 0
}

// checkpoint encodes the replica and commits it through the coordinator. A
// failure is logged, not fatal: the next checkpoint supersedes it.
func (t *trainer) checkpoint(ctx context.Context, a Assignment, last *Progress) {
	start := time.Now()
	data, err := t.rep.Checkpoint(t.pos)
	if err != nil {
		t.log.Error("encode checkpoint", "epoch", t.pos.Epoch, "step", t.pos.Step, "err", err)
		return
	}
	meta := CheckpointMeta{WorkerID: t.id, JobID: a.JobID, Generation: a.Generation, Position: t.pos, LastStep: last}
	t.joinReports() // the coordinator accepts a checkpoint at most one step ahead of the progress
	digest, err := t.coord.CommitCheckpoint(ctx, meta, data)
	for wait := time.Second; err != nil && retryFinal(ctx, a, t.pos, err); wait = min(2*wait, 30*time.Second) {
		t.log.Warn("commit the final checkpoint: retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			digest, err = t.coord.CommitCheckpoint(ctx, meta, data)
		}
	}
	if err != nil {
		t.log.Warn("commit checkpoint", "epoch", t.pos.Epoch, "step", t.pos.Step, "err", err)
		return
	}
	t.met.checkpoints.Inc()
	t.log.Info("checkpoint committed", "digest", digest, "epoch", t.pos.Epoch, "step", t.pos.Step,
		"bytes", len(data), "took", time.Since(start))
}

// retryFinal reports whether a failed commit of the final checkpoint of
// pretraining (no later one supersedes it: the job waits for it) should be
// tried again: unless ctx ended or the coordinator refused it for good (a
// new generation, a lost registration, another phase).
func retryFinal(ctx context.Context, a Assignment, pos job.Position, err error) bool {
	if pos.Epoch < a.TotalEpochs || ctx.Err() != nil {
		return false
	}
	return !errors.Is(err, cluster.ErrStaleGeneration) && !errors.Is(err, client.ErrUnknownWorker) &&
		!errors.Is(err, client.ErrWrongPhase) && !errors.Is(err, client.ErrBadStep)
}

// complete records that step st is applied here: the heartbeat carries the
// new position and timings, and the step waits in pending for its report.
func (t *trainer) complete(a Assignment, st StepWork, stats job.StepStat, took, wait time.Duration) {
	t.mu.Lock()
	t.last = HeartbeatInfo{WorkerID: t.id, Generation: a.Generation, Epoch: t.pos.Epoch, Step: t.pos.Step,
		StepTime: took, ReduceWait: wait}
	t.mu.Unlock()
	t.pending = append(t.pending, t.progress(a, st, stats, took, wait))
}

// progress is the report of step st.
func (t *trainer) progress(a Assignment, st StepWork, stats job.StepStat, took, wait time.Duration) Progress {
	return Progress{WorkerID: t.id, JobID: a.JobID, Generation: a.Generation, Rank: a.Rank,
		Epoch: a.Epoch, Step: st.Step, Stat: stats, Part: len(st.IDs), StepTime: took, ReduceWait: wait}
}

// moved records the position and generation after a broadcast for the
// heartbeat (the last step's timings stay).
func (t *trainer) moved(gen uint64) {
	t.mu.Lock()
	t.last.Generation, t.last.Epoch, t.last.Step = gen, t.pos.Epoch, t.pos.Step
	t.mu.Unlock()
}

// flush reports the pending steps. It is called when a collective that
// follows them completed here: every member contributed to it, so every
// member had applied them, and a step the coordinator counts as done is in
// every survivor's weights even if this worker dies right after reporting.
// The reports (a raft commit each) run in the background, overlapping the
// next step's computation; one batch at a time, in order.
func (t *trainer) flush(ctx context.Context) {
	t.joinReports()
	if len(t.pending) == 0 {
		return
	}
	batch := append([]Progress(nil), t.pending...)
	t.pending = t.pending[:0]
	done := make(chan struct{})
	t.reporting = done
	go func() {
		defer close(done)
		for _, p := range batch {
			g, err := t.coord.ReportProgress(ctx, p)
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, cluster.ErrStaleGeneration):
				// The next generation's assignment re-reports it if needed.
				t.log.Debug("report progress", "epoch", p.Epoch, "step", p.Step, "err", err)
			default:
				t.log.Warn("report progress", "epoch", p.Epoch, "step", p.Step, "err", err)
			}
			t.noteGeneration(g)
		}
	}()
}

// joinReports waits for the reports in flight.
func (t *trainer) joinReports() {
	if t.reporting != nil {
		<-t.reporting
		t.reporting = nil
	}
}

// barrier is a one-value all-reduce after the last step of an assignment,
// so that its pending steps can be reported.
func (t *trainer) barrier(gctx context.Context) error {
	if len(t.pending) == 0 {
		return nil
	}
	if err := t.ring.AllReduceSum(gctx, make([]float32, 1)); err != nil {
		return fmt.Errorf("barrier after epoch %d step %d: %w", t.pos.Epoch, t.pos.Step, cause(gctx, err))
	}
	t.flush(gctx)
	t.joinReports()
	return nil
}

// heartbeatInfo returns what the next heartbeat carries.
func (t *trainer) heartbeatInfo() HeartbeatInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// broadcast makes every member's replica identical to the most advanced
// one's (the root; the lowest rank among equals): the members first sum a
// vote of their positions, then the root's weights, state, optimizer state
// and position are summed with zeros from everyone else, which copies them
// exactly. It returns the root's rank.
func (t *trainer) broadcast(ctx context.Context, members int) (int, error) {
	vote := make([]float32, 2*members)
	vote[2*t.rank], vote[2*t.rank+1] = float32(t.pos.Epoch+1), float32(t.pos.Step)
	if err := t.ring.AllReduceSum(ctx, vote); err != nil {
		return -1, fmt.Errorf("vote: %w", err)
	}
	root := 0
	for r := 1; r < members; r++ {
		if vote[2*r] > vote[2*root] || (vote[2*r] == vote[2*root] && vote[2*r+1] > vote[2*root+1]) {
			root = r
		}
	}
	parts := [][]float32{t.rep.Params(), t.rep.State(), t.rep.OptState()}
	n := 2
	for _, p := range parts {
		n += len(p)
	}
	buf := make([]float32, n)
	if t.rank == root {
		off := 0
		for _, p := range parts {
			off += copy(buf[off:], p)
		}
		buf[off], buf[off+1] = float32(t.pos.Epoch), float32(t.pos.Step)
	}
	if err := t.ring.AllReduceSum(ctx, buf); err != nil {
		return -1, fmt.Errorf("weights from rank %d: %w", root, err)
	}
	if t.rank != root {
		off := 0
		for _, p := range parts {
			off += copy(p, buf[off:off+len(p)])
		}
		if err := t.rep.SetOptState(parts[2]); err != nil {
			return -1, fmt.Errorf("%w: optimizer state from rank %d: %w", errFatal, root, err)
		}
		t.pos = job.Position{Epoch: int(buf[off]), Step: int(buf[off+1])}
	}
	return root, nil
}

// dataFault reports whether a step failed for its images, not its ring: a
// store that stayed unreachable through its retries (shard.ErrStore) or
// bytes that do not match the index (shard.ErrPack). A new generation would
// meet them again, so the worker stops with the error (it names the URL
// and the image) instead of rejoining forever.
func dataFault(gctx context.Context, err error) bool {
	return gctx.Err() == nil && (errors.Is(err, shard.ErrStore) || errors.Is(err, shard.ErrPack))
}
