package worker

import (
	"context"
	"testing"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/shard"
)

// BenchmarkStreamLoader is the streaming loader's rate: the embedded
// photos packed, fetched and decoded at 32 px by 2 threads from a cold
// cache, in steps of 32 images; images/s is the figure to set against
// BenchmarkPretrainStep's.
func BenchmarkStreamLoader(b *testing.B) {
	_, pc := packedJobOf(b, 5, 1000)
	pc.Data.ImageSize = 32
	cat, err := job.OpenCatalogue(context.Background(), pc)
	if err != nil {
		b.Fatal(err)
	}
	defer cat.Origin.Close()
	n := len(cat.Data.Set.Items)
	b.ResetTimer()
	images := 0
	for b.Loop() {
		s := shard.NewStream(shard.StreamConfig{Classes: cat.Data.Set.Classes, Items: cat.Data.Set.Items, Source: cat.Data.Source,
			Size: 32, CacheBytes: MinImageCache, Threads: 2})
		for a := 0; a+32 <= n; a += 32 {
			ids := make([]int, 32)
			for k := range ids {
				ids[k] = a + k
			}
			if _, _, err := s.Images(context.Background(), ids); err != nil {
				b.Fatal(err)
			}
			images += 32
		}
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkPretrainStep is one worker's pretraining step (small at 32 px,
// 32 images, 2 threads) on images held in memory and on images streamed
// from the packed set with read-ahead and a cache of a few steps (so every
// image is fetched and decoded in the run), interleaved in one run.
func BenchmarkPretrainStep(b *testing.B) {
	fc, pc := packedJobOf(b, 5, 1000)
	for _, c := range []*job.Config{&fc, &pc} {
		c.Data.ImageSize, c.Pretrain.GlobalBatch = 32, 32
	}
	ctx := context.Background()
	d, err := job.LoadData(ctx, fc)
	if err != nil {
		b.Fatal(err)
	}
	cat, err := job.OpenCatalogue(ctx, pc)
	if err != nil {
		b.Fatal(err)
	}
	defer cat.Origin.Close()
	a := Assignment{Classes: len(d.Set.Classes), Mean: d.Norm.Mean, Std: d.Norm.Std}
	steps := job.NumSteps(len(d.Split.Train), 32)
	for _, tc := range []struct {
		name string
		src  func() imageSource
	}{
		{"in-memory", func() imageSource { return localSource{set: d.Set} }},
		{"streamed", func() imageSource {
			return shard.NewStream(shard.StreamConfig{Classes: cat.Data.Set.Classes, Items: cat.Data.Set.Items, Source: cat.Data.Source,
				Size: 32, CacheBytes: 8 * 32 * 32 * 32 * 3, ReadAhead: 2, Threads: 2})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, err := newNetReplica(fc, a, tc.src())
			if err != nil {
				b.Fatal(err)
			}
			plan := job.PlanEpoch(d.Split.Train, fc.Seed, 0, 32)
			k := 0
			for b.Loop() {
				s := k % steps
				w := StepWork{Step: s, IDs: plan.Batch(s), Global: len(plan.Batch(s))}
				next := make([]StepWork, 0, 2)
				for j := 1; j <= 2 && s+j < steps; j++ {
					next = append(next, StepWork{Step: s + j, IDs: plan.Batch(s + j)})
				}
				r.Prefetch(next)
				if _, err := r.ComputeGrads(ctx, nil, nil, w, 0, 1); err != nil {
					b.Fatal(err)
				}
				if err := r.Apply(0, s, steps); err != nil {
					b.Fatal(err)
				}
				k++
			}
			b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
