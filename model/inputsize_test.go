package model

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestSetInputSizeMatchesANetBuiltAtThatSize trains a net one step at one size, switches it to
// another and back, and checks each step's loss and gradients equal those of a net built at
// that size with the same parameters and statistics (a resolution curriculum's epochs).
func TestSetInputSizeMatchesANetBuiltAtThatSize(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{Arch: ArchSmall, Blocks: 3, Width: 16, InputSize: 16, Classes: 4},
		{Arch: ArchResNet18, Blocks: ResNetBlocks, Width: 512, InputSize: 32, Classes: 4, Stem: StemSmall},
	} {
		t.Run(string(cfg.Arch), func(t *testing.T) {
			n, err := New(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(4, 4))
			labels := []int{0, 1, 2, 3}
			for _, size := range []int{cfg.InputSize, cfg.InputSize * 3 / 2, cfg.InputSize / 2, cfg.InputSize} {
				if err := n.SetInputSize(size); err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if got := n.Config().InputSize; got != size {
					t.Fatalf("Config().InputSize = %d after SetInputSize(%d)", got, size)
				}
				want := n.Clone()
				fresh := cfg
				fresh.InputSize = size
				ref, err := New(fresh, 99)
				if err != nil {
					t.Fatal(err)
				}
				copy(ref.Params(), want.Params())
				copy(ref.State(), want.State())
				x := randSlice(rng, len(labels)*3*size*size)
				n.ZeroGrads()
				ref.ZeroGrads()
				l1, _, err := n.TrainStep(ctx, x, labels, 1)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				l2, _, err := ref.TrainStep(ctx, x, labels, 1)
				if err != nil {
					t.Fatal(err)
				}
				if l1 != l2 || !equalF32(n.Grads(), ref.Grads()) || !equalF32(n.State(), ref.State()) {
					t.Fatalf("size %d: loss %v vs %v, or gradients or statistics differ from a net built at that size", size, l1, l2)
				}
			}
		})
	}
}

// TestSetInputSizeRejectsWhatTheNetCannotTake keeps the net as it was when the size is out of
// range, and names the field.
func TestSetInputSizeRejectsWhatTheNetCannotTake(t *testing.T) {
	n, err := New(Config{Arch: ArchSmall, Blocks: 3, Width: 8, InputSize: 16, Classes: 4}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 2, MaxInputSize + 1} {
		if err := n.SetInputSize(size); !errors.Is(err, ErrConfig) {
			t.Fatalf("SetInputSize(%d) = %v, want ErrConfig", size, err)
		}
	}
	if n.Config().InputSize != 16 {
		t.Fatalf("InputSize %d after refused changes, want 16", n.Config().InputSize)
	}
	x := randSlice(rand.New(rand.NewPCG(1, 1)), 2*3*16*16)
	if _, err := n.Forward(context.Background(), x, 2); err != nil {
		t.Fatalf("forward at the kept size: %v", err)
	}
	if _, err := n.Forward(context.Background(), randSlice(rand.New(rand.NewPCG(1, 1)), 2*3*8*8), 2); !errors.Is(err, ErrShape) {
		t.Fatalf("forward of 8 px at 16 px: %v, want ErrShape", err)
	}
}

// TestTruncateKeepsTheFirstBlocks truncates 4-block small and NIN networks to 3 blocks: the
// truncated network's features at every block equal the original's (the same weights and
// statistics), its state_dict is the 3-block network's (rotnet.py's small and nin3), and a
// block count the layout cannot give is refused.
func TestTruncateKeepsTheFirstBlocks(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{Arch: ArchSmall, Blocks: 4, Width: 16, InputSize: 16, Classes: 4},
		{Arch: ArchNIN4, Blocks: 4, Width: 24, InputSize: 16, Classes: 4},
	} {
		t.Run(string(cfg.Arch), func(t *testing.T) {
			n, err := New(cfg, 5)
			if err != nil {
				t.Fatal(err)
			}
			x := randSlice(rand.New(rand.NewPCG(6, 6)), 2*3*16*16)
			n.SetTraining(true)
			if _, err := n.Forward(ctx, x, 2); err != nil { // move the running statistics
				t.Fatal(err)
			}
			n.SetTraining(false)
			m, err := n.Truncate(3, 9)
			if err != nil {
				t.Fatal(err)
			}
			three := cfg
			three.Blocks = 3
			ref, err := New(three, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Specs()) != len(ref.Specs()) || m.NumParams() != ref.NumParams() {
				t.Fatalf("truncated: %d tensors, %d params; a 3-block network has %d, %d", len(m.Specs()), m.NumParams(), len(ref.Specs()), ref.NumParams())
			}
			for i, s := range m.Specs() {
				if s.Name != ref.Specs()[i].Name {
					t.Fatalf("tensor %d is %s, want %s", i, s.Name, ref.Specs()[i].Name)
				}
			}
			for b := 1; b <= 2; b++ { // block 3 of the 4-block small net is pooled; 1-2 are identical
				got, _, err := m.Features(ctx, x, 2, b)
				if err != nil {
					t.Fatal(err)
				}
				got = append([]float32(nil), got...)
				want, _, err := n.Features(ctx, x, 2, b)
				if err != nil {
					t.Fatal(err)
				}
				if !equalF32(got, want) {
					t.Fatalf("block %d features differ after truncating", b)
				}
			}
			if _, err := n.Truncate(5, 1); !errors.Is(err, ErrConfig) {
				t.Fatalf("Truncate(5) of 4 blocks: %v, want ErrConfig", err)
			}
		})
	}
	small, _ := New(Config{Arch: ArchSmall, Blocks: 4, Width: 16, InputSize: 16, Classes: 4}, 1)
	if _, err := small.Truncate(2, 1); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "laid out differently") {
		t.Fatalf("Truncate(2) of a 4-block small net (other widths): %v, want ErrConfig", err)
	}
}
