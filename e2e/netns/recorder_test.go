package netns

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// errorf reports a failed check (t.Errorf in the scenarios; a check may
// also be pointed at a log while a known defect is being fixed).
type errorf func(format string, args ...any)

// sample is one observation of the leader's job status.
type sample struct {
	at          time.Time
	phase       pb.Phase
	epoch, next uint32
	total       uint32
	generation  uint64
	leader      string
	members     int // workers with a rank in the current ring
	ckptEpoch   uint32
	ckptStep    uint32
}

// stepKey names one step of one epoch.
type stepKey struct{ epoch, step uint32 }

// committed is a step as the raft state records it.
type committed struct {
	at         time.Time
	generation uint64
	samples    uint32
}

// recorder polls the job status while a scenario runs and keeps what the
// checks need: the progress timeline and every committed step.
type recorder struct {
	c *cluster

	mu      sync.Mutex
	samples []sample
	steps   map[stepKey]committed // the first commit of each step
	seen    map[stepKey]map[committed]bool
	dups    []string
	errs    int
}

// record polls every interval until ctx is done; it returns when stopped.
func (c *cluster) record(ctx context.Context, every time.Duration) (*recorder, func()) {
	r := &recorder{c: c, steps: map[stepKey]committed{}, seen: map[stepKey]map[committed]bool{}}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			st, err := c.status(2 * attempt)
			r.add(st, err)
		}
	})
	return r, func() { cancel(); wg.Wait() }
}

// add records one status answer.
func (r *recorder) add(st *pb.JobStatusResponse, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs++
		return
	}
	s := sample{at: time.Now(), phase: st.GetPhase(), epoch: st.GetEpoch(), next: st.GetNextStep(), total: st.GetTotalSteps(),
		generation: st.GetGeneration(), leader: st.GetLeaderId()}
	for _, w := range st.GetWorkers() {
		if w.GetRank() >= 0 {
			s.members++
		}
	}
	if ck := st.GetLatestCheckpoint(); ck != nil {
		s.ckptEpoch, s.ckptStep = ck.GetEpoch(), ck.GetStep()
	}
	r.samples = append(r.samples, s)
	for _, m := range st.GetRecent() {
		k := stepKey{m.GetEpoch(), m.GetStep()}
		got := committed{at: m.GetTime().AsTime(), generation: m.GetGeneration(), samples: m.GetSamples()}
		if r.seen[k][got] {
			continue
		}
		if r.seen[k] == nil {
			r.seen[k] = map[committed]bool{}
		}
		r.seen[k][got] = true
		if old, ok := r.steps[k]; ok {
			r.dups = append(r.dups, fmt.Sprintf("epoch %d step %d committed twice: generation %d at %s and generation %d at %s",
				k.epoch, k.step, old.generation, old.at.Format("15:04:05.000"), got.generation, got.at.Format("15:04:05.000")))
			continue
		}
		r.steps[k] = got
	}
}

// last returns the latest sample.
func (r *recorder) last() (sample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return sample{}, false
	}
	return r.samples[len(r.samples)-1], true
}

// waitFor polls the samples until cond holds or timeout passes.
func (r *recorder) waitFor(timeout time.Duration, what string, cond func(sample) bool) (sample, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s, ok := r.last(); ok && cond(s) {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s, _ := r.last()
	return s, fmt.Errorf("%s: not within %v (last status: phase %v epoch %d step %d/%d generation %d)",
		what, timeout, s.phase, s.epoch, s.next, s.total, s.generation)
}

// checkProgress wants the committed progress never to go back: phase,
// (epoch, next step) and the latest checkpoint only move forward.
func (r *recorder) checkProgress(e errorf) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Only answers of a leader count: a node that knows none answers with
	// what it has applied, which may trail the commit index.
	var led []sample
	for _, s := range r.samples {
		if s.leader != "" {
			led = append(led, s)
		}
	}
	for i := 1; i < len(led); i++ {
		a, b := led[i-1], led[i]
		if b.phase < a.phase && b.phase != pb.Phase_PHASE_FAILED {
			e("phase went back from %v to %v at %s", a.phase, b.phase, b.at.Format("15:04:05.000"))
		}
		if a.phase == pb.Phase_PHASE_PRETRAINING && b.phase == a.phase && (b.epoch < a.epoch || b.epoch == a.epoch && b.next < a.next) {
			e("committed progress lost: epoch %d step %d, then epoch %d step %d at %s (leader %s -> %s)",
				a.epoch, a.next, b.epoch, b.next, b.at.Format("15:04:05.000"), a.leader, b.leader)
		}
		if b.ckptEpoch < a.ckptEpoch || b.ckptEpoch == a.ckptEpoch && b.ckptStep < a.ckptStep {
			e("checkpoint went back from epoch %d step %d to epoch %d step %d", a.ckptEpoch, a.ckptStep, b.ckptEpoch, b.ckptStep)
		}
	}
}

// checkExactlyOnce wants every step of every epoch committed exactly once,
// and each epoch's steps to cover train images.
func (r *recorder) checkExactlyOnce(e errorf, epochs int, train int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.dups {
		e("%s", d)
	}
	perEpoch := map[uint32][]uint32{}
	images := map[uint32]int{}
	for k, v := range r.steps {
		perEpoch[k.epoch] = append(perEpoch[k.epoch], k.step)
		images[k.epoch] += int(v.samples)
	}
	for ep := range uint32(epochs) {
		steps := perEpoch[ep]
		sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
		for i, s := range steps {
			if uint32(i) != s {
				e("epoch %d: step %d is missing from the committed steps %v", ep, i, steps)
				break
			}
		}
		if images[ep] != train {
			e("epoch %d: %d steps consumed %d images, want each of the %d training images once", ep, len(steps), images[ep], train)
		}
	}
}

// recovery is how long after at the first step was committed that
// satisfies ok (a later generation, or just any step).
func (r *recorder) recovery(at time.Time, ok func(committed) bool) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first time.Time
	for _, v := range r.steps {
		if v.at.After(at) && ok(v) && (first.IsZero() || v.at.Before(first)) {
			first = v.at
		}
	}
	if first.IsZero() {
		return 0, fmt.Errorf("no step committed after the fault at %s", at.Format("15:04:05.000"))
	}
	return first.Sub(at), nil
}

// maxStall is the longest gap between consecutive committed steps after at.
func (r *recorder) maxStall(at time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var times []time.Time
	for _, v := range r.steps {
		if v.at.After(at) {
			times = append(times, v.at)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	prev := at
	for _, x := range times {
		gap = max(gap, x.Sub(prev))
		prev = x
	}
	return gap
}

// medianStep is the median time between consecutive committed steps in
// (from, to]; 0 when there are fewer than two.
func (r *recorder) medianStep(from, to time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var times []time.Time
	for _, v := range r.steps {
		if v.at.After(from) && !v.at.After(to) {
			times = append(times, v.at)
		}
	}
	if len(times) < 2 {
		return 0
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	gaps := make([]time.Duration, len(times)-1)
	for i := range gaps {
		gaps[i] = times[i+1].Sub(times[i])
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	return gaps[len(gaps)/2]
}
