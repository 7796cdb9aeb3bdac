package model

import (
	"context"
	"math/rand/v2"
	"testing"
)

// benchNet times one training step of arch at 32 px on a batch of 128 (the setting).
func benchNet(b *testing.B, arch string) {
	n, err := New(DefaultConfig(arch), 1)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 128
	x := randSlice(rand.New(rand.NewPCG(1, 1)), batch*3*32*32)
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = i % 4
	}
	opt := NewSGD(DefaultSGDConfig())
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		n.ZeroGrads()
		if _, _, err := n.TrainStep(ctx, x, labels, 1); err != nil {
			b.Fatal(err)
		}
		opt.Step(n.Params(), n.Grads(), 0.1)
	}
	b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkTrainStepSmall(b *testing.B) { benchNet(b, ArchSmall) }
func BenchmarkTrainStepNIN4(b *testing.B)  { benchNet(b, ArchNIN4) }
