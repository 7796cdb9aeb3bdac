package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// recalibrated returns a fresh small net's state after RecalibrateBN over batches xs (each of
// batch images).
func recalibrated(t *testing.T, batch int, xs ...[]float32) []float32 {
	t.Helper()
	cfg := DefaultConfig(ArchSmall)
	cfg.InputSize = 16
	n, err := New(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	n.SetTraining(false)
	err = n.RecalibrateBN(context.Background(), func(yield func([]float32, int) error) error {
		for _, x := range xs {
			if err := yield(x, batch); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.Training() {
		t.Fatal("RecalibrateBN left the net in training mode")
	}
	return append([]float32(nil), n.State()...)
}

// TestRecalibrateBNAveragesBatches: the running statistics after two batches are the mean of
// those after each batch alone (every layer's batch statistics depend on its own batch only in
// training mode), and num_batches_tracked counts the batches.
func TestRecalibrateBNAveragesBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const batch = 4
	a := randSlice(rng, batch*3*16*16)
	b := randSlice(rng, batch*3*16*16)
	for i := range b {
		b[i] = 2*b[i] + 0.5 // other statistics than a's
	}
	sa, sb, both := recalibrated(t, batch, a), recalibrated(t, batch, b), recalibrated(t, batch, a, b)
	cfg := DefaultConfig(ArchSmall)
	cfg.InputSize = 16
	n, _ := New(cfg, 5)
	for _, s := range n.Specs() {
		if !s.State {
			continue
		}
		for i := s.Offset; i < s.Offset+s.Size; i++ {
			want := (float64(sa[i]) + float64(sb[i])) / 2
			if s.Size == 1 { // num_batches_tracked
				want = 2
			}
			if got := float64(both[i]); math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
				t.Fatalf("%s[%d] = %g after both batches, want the mean %g of %g and %g", s.Name, i-s.Offset, got, want, sa[i], sb[i])
			}
		}
	}
}

// TestRecalibrateBNMatchesBatchStatistics: recalibrated on one batch, evaluation mode computes
// what training mode computes on that batch (up to the unbiased variance's n/(n-1), 1% here).
func TestRecalibrateBNMatchesBatchStatistics(t *testing.T) {
	cfg := DefaultConfig(ArchSmall)
	cfg.InputSize = 16
	n, err := New(cfg, 9)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 8
	x := randSlice(rand.New(rand.NewPCG(3, 3)), batch*3*16*16)
	one := func(yield func([]float32, int) error) error { return yield(x, batch) }
	if err := n.RecalibrateBN(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	n.SetTraining(false)
	eval, err := n.PooledFeatures(context.Background(), x, batch)
	if err != nil {
		t.Fatal(err)
	}
	n.SetTraining(true)
	train, err := n.PooledFeatures(context.Background(), x, batch)
	if err != nil {
		t.Fatal(err)
	}
	for b := range eval {
		for i := range eval[b] {
			if d := math.Abs(float64(eval[b][i] - train[b][i])); d > 1e-2*(1+math.Abs(float64(train[b][i]))) {
				t.Fatalf("block %d feature %d: evaluation %g, training %g", b+1, i, eval[b][i], train[b][i])
			}
		}
	}
}

func TestRecalibrateBNErrors(t *testing.T) {
	cfg := DefaultConfig(ArchSmall)
	cfg.InputSize = 16
	n, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	none := func(func([]float32, int) error) error { return nil }
	if err := n.RecalibrateBN(context.Background(), none); err == nil {
		t.Fatal("no batches: want an error")
	}
	short := func(yield func([]float32, int) error) error { return yield(make([]float32, 5), 1) }
	if err := n.RecalibrateBN(context.Background(), short); !errors.Is(err, ErrShape) {
		t.Fatalf("wrong input size: %v, want ErrShape", err)
	}
}
