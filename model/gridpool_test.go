package model

import (
	"context"
	"math"
	"testing"
)

// TestAdaptiveAvgPoolKnownAnswer: a 1-channel 5x5 map 0..24 pooled to 2x2
// as PyTorch's AdaptiveAvgPool2d pools it (bins rows/cols 0-2 and 2-4,
// overlapping at 2): torch.nn.functional.adaptive_avg_pool2d(
// torch.arange(25.).view(1,1,5,5), 2) = [[6, 8], [16, 18]].
func TestAdaptiveAvgPoolKnownAnswer(t *testing.T) {
	x := make([]float32, 25)
	for i := range x {
		x[i] = float32(i)
	}
	out := make([]float32, 4)
	adaptiveAvgPool(x, shape{N: 1, H: 5, W: 5, C: 1}, 2, out)
	for i, want := range []float32{6, 8, 16, 18} {
		if out[i] != want {
			t.Fatalf("pooled %v, want [6 8 16 18]", out)
		}
	}
}

// TestGridFeatures: a grid of 1 is PooledFeatures' global average, a
// larger budget gives larger grids (channels x g x g within it), and each
// grid cell's mean over the cells of a divisible map is the global mean.
func TestGridFeatures(t *testing.T) {
	cfg := DefaultConfig(ArchSmall)
	cfg.Classes = 4
	n, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	n.SetTraining(false)
	x := make([]float32, 2*3*32*32)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	ctx := context.Background()
	global, err := n.PooledFeatures(ctx, x, 2)
	if err != nil {
		t.Fatal(err)
	}
	one, grids, err := n.GridFeatures(ctx, x, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for b := range global {
		if grids[b] != 1 || maxAbsDiff(one[b], global[b]) > 1e-6 {
			t.Fatalf("block %d: grid %d, differs from the global pool by %g", b+1, grids[b], maxAbsDiff(one[b], global[b]))
		}
	}
	big, grids, err := n.GridFeatures(ctx, x, 2, 8192)
	if err != nil {
		t.Fatal(err)
	}
	// small at 32 px: blocks of 32 ch at 16x16, 64 at 8x8, 128 at 8x8.
	for b, want := range []int{16, 8, 8} {
		if grids[b] != want || len(big[b]) != 2*len(global[b])/2*want*want {
			t.Fatalf("block %d: grid %d (%d values), want %d", b+1, grids[b], len(big[b]), want)
		}
	}
	c, g := len(global[2])/2, grids[2]
	for ch := range c {
		var sum float64
		for k := range g * g {
			sum += float64(big[2][ch*g*g+k])
		}
		if d := math.Abs(sum/float64(g*g) - float64(global[2][ch])); d > 1e-5 {
			t.Fatalf("channel %d: mean of its cells differs from the global pool by %g", ch, d)
		}
	}
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
