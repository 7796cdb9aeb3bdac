package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"

	"github.com/whorl-ml/whorl/job"
)

// fakeCoord is an in-memory Coordinator that follows the coordinator's
// protocol (proto/whorl/coordinator/v1 and coordinator/DESIGN.md): it plans
// each epoch with the job's plan (job.PlanEpoch), splits the remaining steps
// over the members of the current generation (Epoch.Part), bumps the
// generation on every membership change (register, leave, lease expiry),
// completes a step on its first report and records how often every image
// was consumed.
type fakeCoord struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	images   []int
	batch    int
	epochs   int
	ckEvery  int
	lease    time.Duration
	wait     time.Duration
	workers  map[string]*fakeMember
	members  []string // ids in rank order
	gen      uint64
	epoch    int
	plan     job.Epoch // the epoch being trained
	done     []bool
	phase    pb.Phase
	consumed map[[2]int]int // (epoch, image) -> times its step completed
	ckpts    map[string][]byte
	latest   string
	latestAt job.Position
	resume   bool
	genAt    map[uint64]time.Time
	leaves   int
	minStart int        // members needed before the first step is assigned
	template Assignment // job fields copied into every assignment
}

type fakeMember struct {
	addr   string
	lastHB time.Time
}

func newFakeCoord(images, batch, epochs, ckEvery int) *fakeCoord {
	f := &fakeCoord{changed: make(chan struct{}), batch: batch, epochs: epochs, ckEvery: ckEvery,
		lease: 600 * time.Millisecond, wait: 300 * time.Millisecond, workers: map[string]*fakeMember{},
		phase: pb.Phase_PHASE_PRETRAINING, consumed: map[[2]int]int{}, ckpts: map[string][]byte{}, genAt: map[uint64]time.Time{}}
	for i := range images {
		f.images = append(f.images, i)
	}
	f.planEpoch()
	return f
}

// planEpoch plans the current epoch with the job's plan (seed 7).
func (f *fakeCoord) planEpoch() {
	f.plan = job.PlanEpoch(f.images, 7, f.epoch, f.batch)
	f.done = make([]bool, f.plan.Steps())
}

func (f *fakeCoord) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeCoord) bump() {
	f.gen++
	f.genAt[f.gen] = time.Now()
	f.notify()
}

// expire drops members whose lease ran out (called under mu).
func (f *fakeCoord) expire() {
	for id, m := range f.workers {
		if time.Since(m.lastHB) > f.lease {
			f.remove(id)
		}
	}
}

func (f *fakeCoord) remove(id string) {
	delete(f.workers, id)
	if i := slices.Index(f.members, id); i >= 0 {
		f.members = slices.Delete(f.members, i, i+1)
		if len(f.members) == 0 {
			f.rollback()
		}
		f.bump()
	}
}

// rollback returns the job to its latest checkpoint when no member is left
// (the weights are gone): the steps after it are redone.
func (f *fakeCoord) rollback() {
	f.resume = true
	if f.epoch != f.latestAt.Epoch && f.epoch < f.epochs {
		f.epoch = f.latestAt.Epoch
		f.planEpoch()
	}
	for s := range f.done {
		if s >= f.latestAt.Step && f.done[s] {
			f.done[s] = false
			for _, id := range f.plan.Batch(s) {
				f.consumed[[2]int{f.epoch, id}]--
			}
		}
	}
}

func (f *fakeCoord) Register(_ context.Context, id, addr string) (Registration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.workers[id]; m != nil {
		m.lastHB = time.Now()
		return Registration{Lease: f.lease, Generation: f.gen}, nil
	}
	f.workers[id] = &fakeMember{addr: addr, lastHB: time.Now()}
	f.members = append(f.members, id)
	f.bump()
	return Registration{Lease: f.lease, Generation: f.gen}, nil
}

func (f *fakeCoord) Heartbeat(_ context.Context, hb HeartbeatInfo) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expire()
	m := f.workers[hb.WorkerID]
	if m == nil {
		return 0, client.ErrUnknownWorker
	}
	m.lastHB = time.Now()
	return f.gen, nil
}

func (f *fakeCoord) Leave(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaves++
	f.remove(id)
	return nil
}

func (f *fakeCoord) GetAssignment(ctx context.Context, id string, known Known) (Assignment, error) {
	deadline := time.After(f.wait)
	for {
		f.mu.Lock()
		f.expire()
		if f.workers[id] == nil {
			f.mu.Unlock()
			return Assignment{}, client.ErrUnknownWorker
		}
		a := f.assignment(id)
		ch := f.changed
		f.mu.Unlock()
		if a.Generation != known.Generation || a.Epoch != known.Epoch || a.Phase != known.Phase {
			return a, nil
		}
		select {
		case <-ctx.Done():
			return Assignment{}, ctx.Err()
		case <-deadline:
			return a, nil
		case <-ch:
		case <-time.After(50 * time.Millisecond): // lease expiry is checked lazily
		}
	}
}

// assignment builds id's assignment (under mu).
func (f *fakeCoord) assignment(id string) Assignment {
	a := f.template
	a.JobID, a.Phase = "job-1", f.phase
	a2 := Assignment{JobID: "job-1", Phase: f.phase, Generation: f.gen, Rank: slices.Index(f.members, id),
		Epoch: f.epoch, TotalEpochs: f.epochs, TotalSteps: f.plan.Steps(), CheckpointEvery: f.ckEvery,
		Resume: f.resume, RestoreDigest: f.latest}
	a2.ConfigJSON, a2.ManifestDigest, a2.Mean, a2.Std = a.ConfigJSON, a.ManifestDigest, a.Mean, a.Std
	a = a2
	for _, m := range f.members {
		a.Members = append(a.Members, f.workers[m].addr)
	}
	a.StartStep = slices.Index(f.done, false)
	if f.minStart > len(f.members) {
		return a
	}
	f.minStart = 0
	if a.Rank < 0 || a.StartStep < 0 || f.phase != pb.Phase_PHASE_PRETRAINING {
		return a
	}
	w := len(f.members)
	for s := a.StartStep; s < f.plan.Steps(); s++ {
		a.Steps = append(a.Steps, StepWork{Step: s, IDs: slices.Clone(f.plan.Part(s, a.Rank, w)), Global: len(f.plan.Batch(s))})
	}
	return a
}

func (f *fakeCoord) ReportProgress(_ context.Context, p Progress) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.Generation != f.gen || p.Epoch != f.epoch || p.Step >= len(f.done) {
		return f.gen, fmt.Errorf("%w: progress of generation %d epoch %d step %d", cluster.ErrStaleGeneration, p.Generation, p.Epoch, p.Step)
	}
	if f.done[p.Step] {
		return f.gen, nil
	}
	f.done[p.Step] = true
	f.resume = false
	for _, id := range f.plan.Batch(p.Step) {
		f.consumed[[2]int{f.epoch, id}]++
	}
	if !slices.Contains(f.done, false) {
		f.epoch++
		if f.epoch == f.epochs {
			f.phase = pb.Phase_PHASE_DONE
		} else {
			f.planEpoch()
		}
		f.notify()
	}
	return f.gen, nil
}

func (f *fakeCoord) CommitCheckpoint(_ context.Context, meta CheckpointMeta, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	d := hex.EncodeToString(sum[:])
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ckpts[d] = slices.Clone(data)
	if f.latestAt.Before(meta.Position.Epoch, meta.Position.Step) || f.latest == "" {
		f.latest, f.latestAt = d, meta.Position
	}
	return d, nil
}

func (f *fakeCoord) FetchCheckpoint(_ context.Context, digest string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.ckpts[digest]
	if !ok {
		return nil, fmt.Errorf("checkpoint %s not found", digest)
	}
	return slices.Clone(data), nil
}

// finished reports whether the job is done.
func (f *fakeCoord) finished() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.phase == pb.Phase_PHASE_DONE
}

// consumedExactlyOnce checks that every image was consumed once per epoch.
func (f *fakeCoord) consumedExactlyOnce() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for e := range f.epochs {
		for _, id := range f.images {
			if n := f.consumed[[2]int{e, id}]; n != 1 {
				return fmt.Errorf("epoch %d image %d consumed %d times", e, id, n)
			}
		}
	}
	return nil
}
