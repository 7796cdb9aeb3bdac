package worker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/job"
)

// tinyJob is a 16-pixel small-network job on the embedded set. Only the
// float summation order differs between worker counts (1e-7 relative); a
// max-pool window whose two largest inputs are that close, or a ReLU input
// that close to zero, can flip and move one element's gradient by ~1e-5.
// The learning rate is 0.01 so that such flips stay far below the 1e-4
// tolerance, and the random crop's zero padding (exactly constant regions,
// many near-ties) is off.
func tinyJob(t *testing.T) (job.Config, *job.Data) {
	t.Helper()
	c := job.DefaultConfig()
	c.Data.ImageSize = 16
	c.Pretrain.Epochs = 2
	c.Pretrain.GlobalBatch = 8
	c.Pretrain.Augmentation.CropPad = 0
	c.Pretrain.LR = 0.01
	c.CheckpointEvery = 2
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := loadTiny(t, c)
	return c, d
}

var (
	tinyOnce sync.Once
	tinyData *job.Data
	tinyErr  error
)

func loadTiny(t *testing.T, c job.Config) *job.Data {
	t.Helper()
	tinyOnce.Do(func() { tinyData, tinyErr = job.LoadData(context.Background(), c) })
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyData
}

// netCoord is a fake coordinator for the tiny job on images of the
// training split.
func netCoord(t *testing.T, images int, workers int) (*fakeCoord, *netFactory) {
	c, d := tinyJob(t)
	coord := newFakeCoord(images, c.Pretrain.GlobalBatch, c.Pretrain.Epochs, c.CheckpointEvery)
	coord.images = append([]int(nil), d.Split.Train[:images]...)
	coord.planEpoch()
	coord.minStart = workers
	coord.template = Assignment{ConfigJSON: c.JSON(), ManifestDigest: d.ManifestDigest, Mean: d.Norm.Mean, Std: d.Norm.Std}
	f := &netFactory{mode: DataLocal, threads: 1, data: map[string]*job.Data{job.Digest(c): d}}
	return coord, f
}

// TestNetEquivalentForAnyWorkerCount trains the real network (synchronised
// BatchNorm through the ring) with 1, 2 and 4 workers on the same global
// batches: every replica ends within 1e-4 of the single worker's weights.
func TestNetEquivalentForAnyWorkerCount(t *testing.T) {
	var want Replica
	for _, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("workers=%d", n), func(t *testing.T) {
			coord, f := netCoord(t, 20, n)
			p := newInProcess(t, coord, newMemRings(), func() ReplicaFactory { return f })
			for i := range n {
				p.start(fmt.Sprintf("w%d", i))
			}
			waitFor(t, 60*time.Second, "job finished", coord.finished)
			if err := coord.consumedExactlyOnce(); err != nil {
				t.Error(err)
			}
			got := p.replicas(coord.epochs)
			sameReplicas(t, got["w0"], got, 0) // replicas of one run are bit-identical
			if want == nil {
				want = got["w0"]
				return
			}
			sameReplicas(t, want, got, 1e-4)
		})
	}
}
