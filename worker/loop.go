package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// errFatal marks errors after which the replica cannot be trusted (a failed
// optimizer step): the loop stops instead of retrying.
var errFatal = errors.New("fatal")

// trainer is the training loop of one worker. Run's goroutine owns every
// field except those under mu and the atomics, which the heartbeat goroutine
// shares.
type trainer struct {
	id       string
	ringAddr string
	coord    Coordinator
	rings    RingFactory
	replicas ReplicaFactory
	log      *slog.Logger
	met      *metrics
	retry    time.Duration
	// stuckAfter is how long a failed generation may stay current before
	// the worker forces a new one (rejoin).
	stuckAfter time.Duration

	jobID     string
	idlePhase pb.Phase // phase of the last assignment without work (logged once)
	rep       Replica
	pos       job.Position
	snap      []float32 // State() before the step in flight, restored on abort
	statBuf   []float32 // the step's loss and accuracy for their all-reduce
	// pending are applied steps not yet reported (see flush); reporting is
	// closed when the reports in flight are done.
	pending   []Progress
	reporting chan struct{}

	ring    Ring
	ringGen uint64
	rank    int

	// fence ends the worker when the coordinator says another process
	// registered its id since (client.ErrReplaced); nil in tests that
	// build a trainer without train.
	fence context.CancelCauseFunc

	latest atomic.Uint64 // newest generation heard from the coordinator
	mu     sync.Mutex
	abort  context.CancelFunc // cancels the work of generation abortGen
	abortG uint64
	last   HeartbeatInfo // position and timings the heartbeat reports
}

// newTrainer returns a trainer with no job.
func newTrainer(id, ringAddr string, c Coordinator, r RingFactory, f ReplicaFactory, log *slog.Logger, met *metrics) *trainer {
	return &trainer{id: id, ringAddr: ringAddr, coord: c, rings: r, replicas: f, log: log, met: met,
		retry: 200 * time.Millisecond, stuckAfter: 10 * time.Second, rank: -1, last: HeartbeatInfo{WorkerID: id}}
}

// run fetches assignments and trains them until ctx is done (returns nil) or
// a fatal error.
func (t *trainer) run(ctx context.Context) error {
	defer t.dropRing()
	var known Known
	var failedGen uint64 // generation whose ring failed here
	var failedAt time.Time
	for ctx.Err() == nil {
		a, ok := t.fetch(ctx, known)
		if !ok {
			continue
		}
		known = Known{Generation: a.Generation, Epoch: a.Epoch, Phase: a.Phase}
		switch {
		case a.Phase != pb.Phase_PHASE_PRETRAINING || a.Rank < 0 || len(a.Steps) == 0:
			t.idle(ctx, a)
		case a.Generation == failedGen:
			// A ring is joined once per generation: wait for the next one,
			// forcing it when the coordinator does not see the failure.
			if time.Since(failedAt) > t.stuckAfter {
				t.rejoin(ctx)
				failedAt = time.Now()
			}
		default:
			err := t.work(ctx, a)
			if err == nil || ctx.Err() != nil {
				continue
			}
			if errors.Is(err, errFatal) {
				return err
			}
			t.log.Warn("generation aborted", "generation", a.Generation, "err", err)
			t.met.ringErrors.Inc()
			t.abortRing()
			failedGen, failedAt = a.Generation, time.Now()
		}
	}
	return nil
}

// fetch long-polls for the assignment, registering again when the
// coordinator forgot the worker; ok is false when there is none.
func (t *trainer) fetch(ctx context.Context, known Known) (a Assignment, ok bool) {
	a, err := t.coord.GetAssignment(ctx, t.id, known)
	switch {
	case ctx.Err() != nil:
		return a, false
	case t.replaced(err):
		return a, false
	case errors.Is(err, client.ErrUnknownWorker):
		t.reRegister(ctx)
		return a, false
	case err != nil:
		t.log.Warn("get assignment", "err", err)
		sleep(ctx, t.retry)
		return a, false
	}
	return a, true
}

// rejoin leaves and registers again, which makes the coordinator start a new
// generation: used when a ring failed but every member still holds its
// lease (a stalled or partitioned link), so no lease expiry would.
func (t *trainer) rejoin(ctx context.Context) {
	t.log.Warn("ring failed but the generation did not change; leaving and registering again to force a new one",
		"after", t.stuckAfter)
	if err := t.coord.Leave(ctx, t.id); t.replaced(err) {
		return
	} else if err != nil {
		t.log.Warn("leave", "err", err)
	}
	t.reRegister(ctx)
}

// idle handles an assignment without work: the job is elsewhere (baseline,
// fine-tuning) or this worker waits to be placed in a ring.
func (t *trainer) idle(ctx context.Context, a Assignment) {
	t.dropRing()
	if a.Phase != t.idlePhase {
		t.log.Info("no training work", "job", a.JobID, "phase", a.Phase.Label(), "rank", a.Rank, "generation", a.Generation)
		t.idlePhase = a.Phase
	}
	sleep(ctx, t.retry)
}

// work trains the steps of one assignment.
func (t *trainer) work(ctx context.Context, a Assignment) error {
	t.idlePhase = pb.Phase_PHASE_UNSPECIFIED
	if err := t.ensureReplica(ctx, a); err != nil {
		return err
	}
	gctx, cancel := t.guard(ctx, a)
	defer cancel()
	if err := t.ensureRing(gctx, a); err != nil {
		return err
	}
	for k, st := range a.Steps {
		if p, ok := t.rep.(interface{ Prefetch([]StepWork) }); ok {
			p.Prefetch(a.Steps[k+1:])
		}
		switch {
		case a.Epoch < t.pos.Epoch || (a.Epoch == t.pos.Epoch && st.Step < t.pos.Step):
			// Already in the weights (applied before the generation changed).
			t.pending = append(t.pending, Progress{WorkerID: t.id, JobID: a.JobID, Generation: a.Generation,
				Rank: a.Rank, Epoch: a.Epoch, Step: st.Step, Part: len(st.IDs)})
			continue
		case t.pos.Before(a.Epoch, st.Step):
			t.log.Warn("assignment skips steps the weights lack", "have", t.pos, "epoch", a.Epoch, "step", st.Step)
			t.pos = job.Position{Epoch: a.Epoch, Step: st.Step}
		}
		if err := t.step(ctx, gctx, a, st); err != nil {
			return err
		}
	}
	return t.barrier(gctx)
}

// ensureReplica builds the replica of the assignment's job once, from the
// job's seeded initial weights; ensureRing brings it up to date.
func (t *trainer) ensureReplica(ctx context.Context, a Assignment) error {
	if t.rep != nil && t.jobID == a.JobID {
		return nil
	}
	t.dropRing()
	rep, err := t.replicas.NewReplica(ctx, a)
	if err != nil {
		return fmt.Errorf("build replica of job %s: %w", a.JobID, err)
	}
	t.rep, t.jobID, t.pos = rep, a.JobID, job.Position{}
	t.log.Info("replica ready", "job", a.JobID)
	return nil
}

// resume replaces the in-memory weights by the assignment's checkpoint, or
// by the seeded initial weights when it names none.
func (t *trainer) resume(ctx context.Context, a Assignment) error {
	if a.RestoreDigest == "" {
		t.rep = nil
		return t.ensureReplica(ctx, a)
	}
	data, err := t.coord.FetchCheckpoint(ctx, a.RestoreDigest)
	if err != nil {
		return fmt.Errorf("fetch checkpoint %s of job %s: %w", a.RestoreDigest, a.JobID, err)
	}
	pos, err := t.rep.Restore(data)
	if err != nil {
		return fmt.Errorf("restore checkpoint %s of job %s: %w", a.RestoreDigest, a.JobID, err)
	}
	t.pos = pos
	t.log.Info("resumed from checkpoint", "digest", a.RestoreDigest, "epoch", pos.Epoch, "step", pos.Step)
	return nil
}

// ensureRing builds the ring of the assignment's generation, unless this
// worker already has it, and makes every member's replica identical.
func (t *trainer) ensureRing(ctx context.Context, a Assignment) error {
	if t.ring != nil && t.ringGen == a.Generation && t.rank == a.Rank {
		return nil
	}
	t.dropRing()
	start := time.Now()
	if a.Resume {
		if err := t.resume(ctx, a); err != nil {
			return err
		}
	}
	ring, err := t.rings.NewRing(ctx, a.Generation, a.Members, a.MemberIDs, a.Rank, t.rep.GradReduce())
	if err != nil {
		return fmt.Errorf("build ring of generation %d: %w", a.Generation, err)
	}
	t.ring, t.ringGen, t.rank = ring, a.Generation, a.Rank
	root, err := t.broadcast(ctx, len(a.Members))
	if err != nil {
		t.abortRing()
		return fmt.Errorf("broadcast weights in generation %d: %w", a.Generation, err)
	}
	t.moved(a.Generation)
	t.met.generation.Set(float64(a.Generation))
	t.met.generationChanges.Inc()
	t.met.rank.Set(float64(a.Rank))
	t.log.Info("ring formed", "generation", a.Generation, "rank", a.Rank, "members", len(a.Members),
		"root", root, "epoch", t.pos.Epoch, "step", t.pos.Step, "took", time.Since(start),
		"direct_lanes", ring.DirectLanes()) // 0: the lanes fell back to the gRPC stream
	return nil
}

// dropRing waits for the reports in flight and closes the ring, if any,
// gracefully: its generation ended without a failure here.
func (t *trainer) dropRing() { t.releaseRing(false) }

// abortRing is dropRing for a generation that failed here or was
// superseded: the ring is aborted. A graceful close would wait, up to the
// ring timeout, for a next member that may be the peer whose loss ended
// the generation (a silent link: seen as a 3.5 s stall in e2e/netns
// worker-link-down-up, on top of the lease).
func (t *trainer) abortRing() { t.releaseRing(true) }

func (t *trainer) releaseRing(abort bool) {
	t.joinReports()
	if t.ring == nil {
		return
	}
	t.pending = t.pending[:0] // reported again, if still needed, in the next generation
	if abort {
		t.ring.Abort()
	} else if err := t.ring.Close(); err != nil {
		t.log.Debug("close ring", "generation", t.ringGen, "err", err)
	}
	t.ring, t.rank = nil, -1
}

// guard returns a context for the work of a's generation that is
// cancelled as soon as the coordinator starts a newer generation: a watcher
// long-polls for it (the heartbeat would hear of it up to an interval
// later, while the ring may be stuck on a peer that vanished).
func (t *trainer) guard(ctx context.Context, a Assignment) (context.Context, context.CancelFunc) {
	gen := a.Generation
	gctx, cancel := context.WithCancelCause(ctx)
	abort := func() { cancel(fmt.Errorf("%w: generation %d superseded", cluster.ErrStaleGeneration, gen)) }
	t.mu.Lock()
	t.abort, t.abortG = abort, gen
	t.mu.Unlock()
	if t.latest.Load() > gen {
		abort()
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t.watchGeneration(gctx, Known{Generation: gen, Epoch: a.Epoch, Phase: a.Phase})
	}()
	return gctx, func() {
		t.mu.Lock()
		t.abort = nil
		t.mu.Unlock()
		cancel(nil)
		<-watched
	}
}

// watchGeneration long-polls the assignment until ctx is done or it names
// a generation newer than known's, which it notes (aborting the work).
func (t *trainer) watchGeneration(ctx context.Context, known Known) {
	for ctx.Err() == nil {
		a, err := t.coord.GetAssignment(ctx, t.id, known)
		switch {
		case ctx.Err() != nil, t.replaced(err):
			return
		case err == nil && a.Generation > known.Generation:
			t.noteGeneration(a.Generation)
			return
		case err != nil:
			sleep(ctx, t.retry) // the heartbeat re-registers or reports it
		case a.Epoch == known.Epoch && a.Phase == known.Phase:
			sleep(ctx, t.retry) // the poll's wait ended without news
		default:
			known.Epoch, known.Phase = a.Epoch, a.Phase
		}
	}
}

// noteGeneration records the newest generation the coordinator knows and
// aborts work of an older one.
func (t *trainer) noteGeneration(g uint64) {
	for {
		old := t.latest.Load()
		if g <= old || t.latest.CompareAndSwap(old, g) {
			break
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.abort != nil && g > t.abortG {
		t.log.Info("generation superseded; aborting in-flight work", "generation", t.abortG, "newest", g)
		t.abort()
		t.abort = nil
	}
}

// replaced reports whether err says another process registered this
// worker's id since (client.ErrReplaced); if so it ends the worker.
func (t *trainer) replaced(err error) bool {
	if !errors.Is(err, client.ErrReplaced) {
		return false
	}
	t.log.Error("another process registered this worker id; stopping", "err", err)
	if t.fence != nil {
		t.fence(err)
	}
	return true
}

// reRegister registers again after the coordinator forgot this worker.
func (t *trainer) reRegister(ctx context.Context) {
	if _, err := t.coord.Register(ctx, t.id, t.ringAddr); err != nil {
		t.log.Warn("register again", "err", err)
		sleep(ctx, t.retry)
		return
	}
	t.log.Info("registered again")
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}
