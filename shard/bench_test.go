package shard

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
)

// flowersDir is the real photo set; benchmarks that need it skip without it.
const flowersDir = "../../shared/data/flowers"

// BenchmarkLoadFlowers decodes and resizes the 4,311 photos to 32 px with
// one worker (the baseline) and with every core. cpu-s/op is the process
// CPU time per load, which stays meaningful when other jobs share the cores.
func BenchmarkLoadFlowers(b *testing.B) {
	if _, err := os.Stat(flowersDir); err != nil {
		b.Skipf("no photos at %s", flowersDir)
	}
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run("workers="+itoa(w), func(b *testing.B) {
			cfg := LoadConfig{Dir: flowersDir, Size: 32, MaxPixels: DefaultMaxPixels, Workers: w}
			cpu0 := processCPU()
			for b.Loop() {
				d, rep, err := Load(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(d.Len()), "images")
				b.ReportMetric(float64(rep.Bytes)/1e6, "MB")
			}
			b.ReportMetric((processCPU()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// BenchmarkLoadEmbedded decodes the embedded set at 32 px on every core.
func BenchmarkLoadEmbedded(b *testing.B) {
	for b.Loop() {
		if _, _, err := Load(context.Background(), DefaultLoadConfig()); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}

// BenchmarkRotationBatch builds one 128-sample rotation batch (32 images x
// 4 rotations, augmented) at 32 px; the baseline is ClassBatch over the same
// 32 images, which does the augmentation and normalisation without the
// rotated copies.
func BenchmarkRotationBatch(b *testing.B) {
	d, idx, nz, rng := benchBatch(32)
	var x []float32
	var l []int
	b.Run("class", func(b *testing.B) {
		for b.Loop() {
			x, l = ClassBatch(d, idx, nz, DefaultAugment(), rng, x, l)
		}
	})
	b.Run("rotation", func(b *testing.B) {
		for b.Loop() {
			x, l = RotationBatch(d, idx, nz, DefaultAugment(), rng, x, l)
		}
	})
}

// BenchmarkRotationBatchHeavy builds one 128-sample rotation batch (32
// images x 4 rotations) with SimCLR's augmentation (a random-resized crop
// of scale [0.2, 1] and ratio [3/4, 4/3], flip, colour jitter 0.4 with
// probability 0.8, grayscale 0.2) from a 128 px store rendered at 64 px
// and from a 48 px store at 32 px; beside them the whole-image resample
// with the paper's pad-crop and flip, and the plain path (the paper's
// augmentation on images stored at the training size).
func BenchmarkRotationBatchHeavy(b *testing.B) {
	heavy := func(size int) Augment { a := simclr; a.Size = size; return a }
	resize := func(size int) Augment { a := DefaultAugment(); a.Size = size; return a }
	for _, bc := range []struct {
		name        string
		store, size int
		aug         Augment
	}{
		{"simclr-128to64", 128, 64, heavy(64)},
		{"resize-128to64", 128, 64, resize(64)},
		{"plain-64", 64, 64, DefaultAugment()},
		{"simclr-48to32", 48, 32, heavy(32)},
		{"resize-48to32", 48, 32, resize(32)},
		{"plain-32", 32, 32, DefaultAugment()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d, idx, nz, rng := benchBatch(bc.store)
			var x []float32
			var l []int
			b.ReportAllocs()
			for b.Loop() {
				x, l = RotationBatch(d, idx, nz, bc.aug, rng, x, l)
			}
		})
	}
}

// benchBatch is the batch benchmarks' set-up: 64 images stored at store px,
// every other one (32) in the batch, their normaliser and a seeded rng.
func benchBatch(store int) (*Dataset, []int, Normalizer, *rand.Rand) {
	d := tiny(64, store, 1)
	idx := make([]int, 32)
	for i := range idx {
		idx[i] = 2 * i
	}
	return d, idx, ComputeNormalizer(d, idx), rand.New(rand.NewPCG(1, 2))
}
