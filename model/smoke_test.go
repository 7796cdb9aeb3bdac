package model

import (
	"context"
	"math/rand/v2"
	"testing"
)

// TestSmokeTrain checks that a few SGD steps on one batch drive the loss down (the whole
// training loop works end to end).
func TestSmokeTrain(t *testing.T) {
	for _, arch := range []string{"small", "nin4", "resnet18"} {
		cfg := DefaultConfig(arch)
		cfg.InputSize, cfg.Width = 16, 32
		if cfg.IsResNet() {
			if raceDetector {
				continue // ResNet-scale: runs without -race (see skipResNetUnderRace)
			}
			cfg.Stem, cfg.Width = StemSmall, 512
		}
		n, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		x := make([]float32, 8*3*16*16)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		labels := []int{0, 1, 2, 3, 0, 1, 2, 3}
		opt := NewSGD(DefaultSGDConfig())
		var first, last float64
		for s := range 10 {
			n.ZeroGrads()
			loss, _, err := n.TrainStep(context.Background(), x, labels, 1)
			if err != nil {
				t.Fatal(err)
			}
			opt.Step(n.Params(), n.Grads(), 0.05)
			if s == 0 {
				first = loss
			}
			last = loss
		}
		t.Logf("%s: loss %.4f -> %.4f", arch, first, last)
		if !(last < first) {
			t.Errorf("%s: loss did not fall: %g -> %g", arch, first, last)
		}
	}
}
