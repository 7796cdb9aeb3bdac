package e2e

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/worker"
)

// TestPretrainedWeightsSameForAnyWorkerCount pretrains the same job with
// 1, 2 and 4 workers (real coordinator, real ring, synchronised BatchNorm)
// and compares the committed pretrained checkpoints: the weights and the
// BatchNorm statistics agree within 1e-4.
//
// Only the float summation order differs between worker counts (1e-7
// relative). A max-pool window whose two largest inputs are that close, or
// a ReLU input that close to zero, can flip, which moves one element's
// gradient by ~1e-5: measured once per few steps here. The learning rate is
// 0.01 so that such flips stay far below the tolerance, and the random
// crop's zero padding (exactly constant regions: many near-ties) is off; a
// missing or double-counted contribution would still be a difference of
// order 1e-3.
func TestPretrainedWeightsSameForAnyWorkerCount(t *testing.T) {
	dir := tinyDataDir(t, 3, 12)
	c := tinyJob(t, dir, 1)
	c.Pretrain.Augmentation.CropPad = 0
	c.Pretrain.LR = 0.01
	var want *model.Net
	for _, n := range []int{1, 2, 4} {
		lc, client := startCoordinators(t, 1)
		ws := newWorkers(t, lc.Addrs())
		for i := range n {
			ws.start(fmt.Sprintf("w%d", i), worker.DataLocal, dir)
		}
		// Every worker must be in the ring before the first step, or the
		// first steps run on fewer workers (still exact, but not this test).
		waitUntil(t, time.Minute, "all workers registered", func() bool { return len(status(t, client).GetWorkers()) == n })
		submit(t, client, c)
		waitUntil(t, 2*time.Minute, "pretraining done", pastPretraining(t, client))
		digest := status(t, client).GetLatestCheckpoint().GetDigest()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, data, err := client.FetchCheckpoint(ctx, digest)
		cancel()
		if err != nil {
			t.Fatalf("%d workers: fetch checkpoint %s: %v", n, digest, err)
		}
		ck, err := model.DecodeCheckpoint(data)
		if err != nil {
			t.Fatal(err)
		}
		ws.stopAll()
		_ = lc.Close()
		if want == nil {
			want = ck.Net
			continue
		}
		dp, ds := maxDiff(want.Params(), ck.Net.Params()), maxDiff(want.State(), ck.Net.State())
		t.Logf("%d workers vs 1: max difference %.3g in weights, %.3g in BatchNorm state", n, dp, ds)
		if dp > 1e-4 || ds > 1e-4 {
			t.Errorf("%d workers: weights differ by %g, state by %g from 1 worker's (tolerance 1e-4)", n, dp, ds)
		}
	}
}

// maxDiff is the largest absolute difference of two equal-length buffers
// (+Inf when the lengths differ).
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
