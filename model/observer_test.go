package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// recorder is a GradObserver that keeps each reported range and a copy of its values at the
// time it was reported.
type recorder struct {
	grads  []float32
	ranges [][2]int
	seen   [][]float32
}

func (r *recorder) GradsReady(lo, hi int) {
	r.ranges = append(r.ranges, [2]int{lo, hi})
	r.seen = append(r.seen, append([]float32(nil), r.grads[lo:hi]...))
}

// TestGradObserverReportsFinalRanges: Backward reports every gradient exactly once, in strictly
// decreasing offsets (what buckets filled from the end of the buffer need), and a reported
// range never changes afterwards in the same Backward.
func TestGradObserverReportsFinalRanges(t *testing.T) {
	for _, cfg := range []Config{
		{Arch: ArchSmall, Blocks: 3, Width: 32, InputSize: 16, Classes: 4},
		{Arch: ArchNIN4, Blocks: 4, Width: 16, InputSize: 8, Classes: 4},
		{Arch: ArchResNet18, Blocks: ResNetBlocks, Width: 512, InputSize: 8, Classes: 4, Stem: StemSmall},
		{Arch: ArchResNet50, Blocks: ResNetBlocks, Width: 2048, InputSize: 32, Classes: 4, Stem: StemImageNet},
	} {
		t.Run(fmt.Sprint(cfg.Arch, "-", cfg.Stem), func(t *testing.T) {
			if cfg.IsResNet() {
				skipResNetUnderRace(t)
			}
			testGradObserver(t, cfg)
		})
	}
}

func testGradObserver(t *testing.T, cfg Config) {
	n, err := New(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{grads: n.Grads()}
	n.SetGradObserver(rec)
	rng := rand.New(rand.NewPCG(3, 3))
	x := randSlice(rng, 4*3*cfg.InputSize*cfg.InputSize)
	if _, _, err := n.TrainStep(context.Background(), x, []int{0, 1, 2, 3}, 1); err != nil {
		t.Fatal(err)
	}
	next := n.NumParams()
	for i, r := range rec.ranges {
		if r[1] != next || r[0] >= r[1] {
			t.Fatalf("range %d is [%d, %d), want one ending at %d (the previous range's start)", i, r[0], r[1], next)
		}
		next = r[0]
		if !equalF32(rec.seen[i], n.Grads()[r[0]:r[1]]) {
			t.Fatalf("range %d [%d, %d) changed after it was reported final", i, r[0], r[1])
		}
	}
	if next != 0 {
		t.Fatalf("gradients [0, %d) never reported", next)
	}
	if want := len(n.units) + 1; len(rec.ranges) != want {
		t.Fatalf("%d ranges, want one per unit and one for the head (%d)", len(rec.ranges), want)
	}
}
