package session

import (
	"math"
	"testing"
	"time"
)

// TestTrackerEpochMeanWeighsStepsByImages checks the cluster run's progress
// line uses the epoch statistic of --local and of the coordinator's
// history (job.EpochMean: each step weighted by its images), not a plain
// mean of the steps: an epoch's short last step counts for its images.
func TestTrackerEpochMeanWeighsStepsByImages(t *testing.T) {
	tr := newPretrainTracker(nil)
	now := time.Now()
	tr.steps[[2]uint32{2, 0}] = seenStep{loss: 1, accuracy: 0.5, samples: 96, at: now}
	tr.steps[[2]uint32{2, 1}] = seenStep{loss: 2, accuracy: 0.25, samples: 32, at: now.Add(time.Second)}
	tr.steps[[2]uint32{1, 7}] = seenStep{loss: 9, accuracy: 1, samples: 96, at: now} // another epoch
	e := tr.epochStats(2, time.Minute)
	if math.Abs(e.loss-1.25) > 1e-12 || math.Abs(e.accuracy-0.4375) > 1e-12 {
		t.Errorf("epoch mean loss %v accuracy %v, want 1.25 and 0.4375 (weighted by images)", e.loss, e.accuracy)
	}
	if math.Abs(e.sps-128) > 1e-9 {
		t.Errorf("samples per second %v, want 128 over the window", e.sps)
	}
}
