package session

import (
	"cmp"
	"slices"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// pretrainTracker follows distributed pretraining through job statuses:
// it shows the progress of the running epoch from the recent step metrics
// and a line for every epoch the coordinator's history completes. (The
// report's pretext history comes from the coordinator, through FineTune.)
type pretrainTracker struct {
	p       func(experiment.Event)
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

func newPretrainTracker(p func(experiment.Event)) *pretrainTracker {
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
	t.show(experiment.Event{Phase: pb.Phase_PHASE_PRETRAINING, Epoch: int(st.GetEpoch()) + 1, Epochs: int(st.GetTotalEpochs()),
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
		t.show(experiment.Event{Phase: pb.Phase_PHASE_PRETRAINING, Epoch: int(e.GetEpoch()), Epochs: int(st.GetTotalEpochs()),
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

// show passes e on (nowhere without a progress function).
func (t *pretrainTracker) show(e experiment.Event) {
	if t.p != nil {
		t.p(e)
	}
}
