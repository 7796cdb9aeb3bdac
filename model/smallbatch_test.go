package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSmallerBatchThanTheWorkspace trains a step at the workspace's batch
// and then one at a smaller batch whose convolution chunks are larger than
// the full batch's (small at 48 px: 128 images run its 64->128 layer as two
// chunks of 64, 100 images as one of 100). The smaller step must fit the
// scratch (it overran it: a GEMM bounds panic in the flowers data's last,
// partial batch) and give the gradients of a network that only ever saw
// batches of 100, up to the summation order.
func TestSmallerBatchThanTheWorkspace(t *testing.T) {
	cfg := DefaultConfig(ArchSmall)
	cfg.InputSize = 48
	rng := rand.New(rand.NewPCG(3, 4))
	x := randSlice(rng, 128*3*48*48)
	labels := make([]int, 128)
	for i := range labels {
		labels[i] = i % 4
	}
	ctx := context.Background()
	a, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.TrainStep(ctx, x, labels, 1); err != nil {
		t.Fatal(err)
	}
	b := a.Clone() // same weights and statistics, no workspace yet
	a.ZeroGrads()
	if _, _, err := a.TrainStep(ctx, x[:100*3*48*48], labels[:100], 1); err != nil {
		t.Fatal(err)
	}
	b.ZeroGrads()
	if _, _, err := b.TrainStep(ctx, x[:100*3*48*48], labels[:100], 1); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, g := range a.Grads() {
		d := math.Abs(float64(g-b.Grads()[i])) / (math.Abs(float64(b.Grads()[i])) + 1e-3)
		worst = max(worst, d)
	}
	// Not bit for bit: which layers keep an im2col cache depends on the
	// workspace's batch, and the weight gradient sums a cached layer's
	// chunks in another order than an uncached one's single call.
	if worst > 1e-4 {
		t.Errorf("a batch of 100 after a workspace of 128: gradients off by %g (relative) from a net that saw only 100", worst)
	}
}
