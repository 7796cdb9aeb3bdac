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
// cluster trains on what the single-process loop trains on. It holds for
// the paper's crop and flip and for the random-resized crop with colour
// jitter and grayscale from photos stored larger than the training size.
func TestBatchIndependentOfSplit(t *testing.T) {
	const size = 8
	heavy := AugmentConfig{Flip: true, CropScale: []float64{0.2, 1},
		ColorJitter: JitterConfig{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Prob: 0.8}, Grayscale: 0.2}
	for _, tc := range []struct {
		name  string
		store int
		aug   AugmentConfig
	}{
		{"crop and flip", size, AugmentConfig{CropPad: 4, Flip: true}},
		{"resized crop, jitter, grayscale from 16 px", 2 * size, heavy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := noiseSet(t, 20, tc.store)
			c := DefaultConfig()
			c.Seed, c.Data.ImageSize, c.Data.StoreSize, c.Pretrain.Augmentation = 7, size, tc.store, tc.aug
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			ids := make([]int, d.Len())
			for i := range ids {
				ids[i] = i
			}
			plan := PlanEpoch(ids, c.Seed, 1, 12)
			norm := shard.Normalizer{Mean: [3]float32{100, 110, 120}, Std: [3]float32{50, 60, 70}}
			global := plan.Batch(0)
			x, labels := NewBatcher(c, norm).Build(d, global, global, 1, 0)
			if len(x) != len(labels)*3*size*size {
				t.Fatalf("%d values for %d samples, want samples of %d px", len(x), len(labels), size)
			}
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
		})
	}
}

// TestLabeledBatchPasses checks the joint mode's labeled draws: every pass
// over the labeled images takes each once, the draw of a global step does
// not depend on how steps are counted in epochs, and another seed draws
// another order.
func TestLabeledBatchPasses(t *testing.T) {
	labeled := []int{3, 9, 11, 20, 21, 40, 41}
	const batch = 3
	var seq []int
	for step := range 7 { // 21 draws: three passes
		seq = append(seq, LabeledBatch(labeled, 5, 0, step, 7, batch)...)
	}
	for pass := range 3 {
		got := slices.Sorted(slices.Values(seq[pass*len(labeled) : (pass+1)*len(labeled)]))
		if !slices.Equal(got, labeled) {
			t.Fatalf("pass %d draws %v, want each of %v once", pass, got, labeled)
		}
	}
	if slices.Equal(seq[:7], seq[7:14]) {
		t.Error("two passes draw the same order")
	}
	if a, b := LabeledBatch(labeled, 5, 1, 2, 4, batch), seq[6*batch:7*batch]; !slices.Equal(a, b) {
		t.Errorf("epoch 1 step 2 of 4 steps draws %v, the 7th global step %v", a, b)
	}
	if slices.Equal(LabeledBatch(labeled, 6, 0, 0, 7, 7), seq[:7]) {
		t.Error("another seed draws the same first pass")
	}
	if LabeledBatch(nil, 5, 0, 0, 7, batch) != nil {
		t.Error("no labeled images give a batch")
	}
}

// TestJointBatchIndependentOfSplit checks the joint batch: its rotation rows
// are Build's, and each labeled image's row is the same whichever rank
// builds it and whatever else that rank builds.
func TestJointBatchIndependentOfSplit(t *testing.T) {
	const size = 8
	d := noiseSet(t, 20, size)
	c := DefaultConfig()
	c.Data.ImageSize = size
	norm := shard.Normalizer{Mean: [3]float32{100, 110, 120}, Std: [3]float32{50, 60, 70}}
	ids, lab := []int{0, 1, 2, 3}, []int{10, 11, 12}
	rot, _ := NewBatcher(c, norm).Build(d, ids, ids, 2, 3)
	x, labels := NewBatcher(c, norm).BuildJoint(d, ids, ids, lab, lab, 2, 3)
	sample := 3 * size * size
	if len(labels) != 4*len(ids) || len(x) != len(rot)+len(lab)*sample || !slices.Equal(x[:len(rot)], rot) {
		t.Fatalf("joint batch: %d labels, %d values; want Build's %d rows then %d labeled", len(labels), len(x), len(labels), len(lab))
	}
	b := NewBatcher(c, norm)
	for k, id := range lab {
		part, _ := b.BuildJoint(d, ids[k:k+1], ids[k:k+1], []int{id}, []int{id}, 2, 3)
		if !slices.Equal(part[4*sample:], x[len(rot)+k*sample:len(rot)+(k+1)*sample]) {
			t.Fatalf("labeled image %d built alone differs from the global batch's row", id)
		}
	}
	plain := shard.Augment{}
	if b.LabeledAug == plain {
		t.Fatal("the labeled images are not augmented (the supervised recipe has crop and flip)")
	}
}

// TestCurriculumBatches checks a resolution curriculum's batches: each
// epoch's images at its stage's side, drawn exactly as a job trained at that
// side throughout draws them (the same crops, flips and rotations), the
// joint mode's labeled rows at the same side.
func TestCurriculumBatches(t *testing.T) {
	const size = 16
	d := noiseSet(t, 12, size)
	c := DefaultConfig()
	c.Seed, c.Data.ImageSize, c.Pretrain.Epochs = 3, size, 4
	c.Pretrain.Curriculum = []CurriculumStage{{Until: 0.25, Scale: 0.5}, {Until: 0.5, Scale: 0.75}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	norm := shard.Normalizer{Mean: [3]float32{100, 110, 120}, Std: [3]float32{50, 60, 70}}
	ids, lab := []int{0, 1, 2, 3, 4}, []int{7, 8}
	b := NewBatcher(c, norm)
	for epoch, side := range []int{8, 12, 16, 16} {
		if got := b.SizeAt(epoch); got != side {
			t.Fatalf("SizeAt(%d) = %d, want %d", epoch, got, side)
		}
		x, labels := b.Build(d, ids, ids, epoch, 2)
		flat := c
		flat.Data.ImageSize, flat.Data.StoreSize, flat.Pretrain.Curriculum = side, size, nil
		want, wantLabels := NewBatcher(flat, norm).Build(d, ids, ids, epoch, 2)
		if len(x) != len(labels)*3*side*side || !slices.Equal(x, want) || !slices.Equal(labels, wantLabels) {
			t.Fatalf("epoch %d: %d values for %d samples, or samples other than a %d-px job's", epoch, len(x), len(labels), side)
		}
		jx, _ := b.BuildJoint(d, ids, ids, lab, lab, epoch, 2)
		if len(jx) != (len(labels)+len(lab))*3*side*side {
			t.Fatalf("epoch %d: joint batch of %d values, want %d-px rows", epoch, len(jx), side)
		}
	}
}
