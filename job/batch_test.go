package job

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/whorl-ml/whorl/shard"
)

// noiseSet is a dataset of n random size x size images.
func noiseSet(t *testing.T, n, size int) *shard.Dataset {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	pix := make([]uint8, n*size*size*3)
	for i := range pix {
		pix[i] = uint8(r.IntN(256))
	}
	items := make([]shard.Item, n)
	for i := range items {
		items[i] = shard.Item{Path: "a/" + string(rune('a'+i%26)), Class: 0}
	}
	d, err := shard.NewDataset([]string{"a"}, items, size, pix)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// samples returns the batch's samples keyed by (image id, rotation).
func samples(x []float32, labels, ids []int, sample int) map[[2]int][]float32 {
	out := map[[2]int][]float32{}
	n := len(ids)
	for s, lab := range labels {
		out[[2]int{ids[s%n], lab}] = slices.Clone(x[s*sample : (s+1)*sample])
	}
	return out
}

// TestBatchIndependentOfSplit builds a global batch at once and as the parts
// of 1, 2 and 3 ranks: every (image, rotation) sample is the same, so the
// cluster trains on what the single-process loop trains on.
func TestBatchIndependentOfSplit(t *testing.T) {
	const size = 8
	d := noiseSet(t, 20, size)
	c := DefaultConfig()
	c.Seed = 7
	ids := make([]int, d.Len())
	for i := range ids {
		ids[i] = i
	}
	plan := PlanEpoch(ids, c.Seed, 1, 12)
	norm := shard.Normalizer{Mean: [3]float32{100, 110, 120}, Std: [3]float32{50, 60, 70}}
	global := plan.Batch(0)
	x, labels := NewBatcher(c, norm).Build(d, global, global, 1, 0)
	want := samples(x, labels, global, 3*size*size)
	if len(want) != 4*len(global) {
		t.Fatalf("%d distinct samples, want %d", len(want), 4*len(global))
	}
	for _, world := range []int{1, 2, 3} {
		b := NewBatcher(c, norm)
		for r := range world {
			part := plan.Part(0, r, world)
			x, labels := b.Build(d, part, part, 1, 0)
			for k, v := range samples(x, labels, part, 3*size*size) {
				if !slices.Equal(v, want[k]) {
					t.Fatalf("world %d rank %d: sample of image %d rotation %d differs from the global batch's", world, r, k[0], k[1])
				}
			}
		}
	}
	x2, _ := NewBatcher(c, norm).Build(d, global, global, 1, 1)
	if slices.Equal(x, x2) {
		t.Error("another step draws the same augmentation")
	}
}
