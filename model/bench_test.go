package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchNet times one training step of arch at 32 px on a batch of 128 (the setting).
func benchNet(b *testing.B, arch string) { benchConfig(b, DefaultConfig(arch), 32) }

// benchConfig times one training step of cfg at size px on a batch of 128.
func benchConfig(b *testing.B, cfg Config, size int) {
	cfg.InputSize = size
	n, err := New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 128
	x := randSlice(rand.New(rand.NewPCG(1, 1)), batch*3*size*size)
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = i % 4
	}
	opt := NewSGD(DefaultSGDConfig())
	ctx := context.Background()
	if _, _, err := n.TrainStep(ctx, x, labels, 1); err != nil { // allocate the workspace untimed
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := cpuTime()
	for b.Loop() {
		n.ZeroGrads()
		if _, _, err := n.TrainStep(ctx, x, labels, 1); err != nil {
			b.Fatal(err)
		}
		opt.Step(n.Params(), n.Grads(), 0.1)
	}
	b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(batch)*float64(b.N)/(cpuTime()-t0).Seconds(), "samples/cpu-s")
}

func BenchmarkTrainStepSmall(b *testing.B) { benchNet(b, ArchSmall) }
func BenchmarkTrainStepNIN4(b *testing.B)  { benchNet(b, ArchNIN4) }

// BenchmarkTrainStepResNet times the ResNet settings: resnet18 at 64 and 128 px,
// resnet18 with the small stem at 32, resnet50 at 128.
func BenchmarkTrainStepResNet(b *testing.B) {
	for _, c := range []benchCase{
		benchCaseOf("resnet18-64"), benchCaseOf("resnet18-128"), benchCaseOf("resnet18-small-32"), benchCaseOf("resnet50-128"),
	} {
		b.Run(c.name, func(b *testing.B) { benchConfig(b, c.cfg, c.size) })
	}
}

// benchCase is a network at an input size.
type benchCase struct {
	name string
	cfg  Config
	size int
}

// benchCaseOf parses "ARCH[-small]-SIZE" (the -small suffix is the small ResNet stem).
func benchCaseOf(name string) benchCase {
	i := strings.LastIndexByte(name, '-')
	arch, size := name[:i], 0
	fmt.Sscan(name[i+1:], &size)
	arch, small := strings.CutSuffix(arch, "-small")
	cfg := DefaultConfig(arch)
	if small {
		cfg.Stem = StemSmall
	}
	return benchCase{name: name, cfg: cfg, size: size}
}

// BenchmarkConv times forward+backward of the convolutions of nin4 and small at batch 128 /
// 32 px and reports the GEMM rate (2 x multiply-adds x 3 passes).
func BenchmarkConv(b *testing.B) {
	cases := []struct {
		name                      string
		cin, cout, k, stride, pad int
		h                         int
	}{
		{"nin-b1-5x5-3to192", 3, 192, 5, 1, 2, 32},
		{"nin-b1-1x1-192to160", 192, 160, 1, 1, 0, 32},
		{"nin-b2-5x5-96to192", 96, 192, 5, 1, 2, 16},
		{"nin-b3-3x3-192to192", 192, 192, 3, 1, 1, 8},
		{"small-b1-3x3-32to32", 32, 32, 3, 1, 1, 32},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			cv := newConv2d(c.cin, c.cout, c.k, c.stride, c.pad)
			cv.w, cv.dw = randSlice(rng, cv.weights()), make([]float32, cv.weights())
			in := shape{N: 128, H: c.h, W: c.h, C: c.cin}
			out := cv.outShape(in)
			x, y := randSlice(rng, in.size()), make([]float32, out.size())
			dx, col := make([]float32, in.size()), make([]float32, cv.colSize(in)+1)
			for b.Loop() {
				cv.forward(x, in, y, col)
				cv.backward(x, in, y, dx, col)
			}
			flops := 3 * 2 * float64(out.size()) * float64(cv.kdim())
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// BenchmarkBNReLU times the fused BatchNorm+ReLU (training forward + backward) on nin4's
// largest activation (batch 128, 32x32, 192 channels), with the vector kernels and without.
func BenchmarkBNReLU(b *testing.B) {
	defer func(v bool) { useAVX2 = v }(useAVX2)
	for _, vec := range []bool{true, false} {
		name := "go"
		if vec {
			if !useAVX2 {
				continue
			}
			name = "avx2"
		}
		b.Run(name, func(b *testing.B) {
			useAVX2 = vec
			rng := rand.New(rand.NewPCG(3, 4))
			const m, c = 128 * 32 * 32, 192
			bn := newTestBN(rng, c)
			y, z, g := randSlice(rng, m*c), make([]float32, m*c), randSlice(rng, m*c)
			part := make([]float32, partialSize(m, c, 2))
			ctx := context.Background()
			for b.Loop() {
				_ = bn.forward(ctx, y, z, m, true, nil, part)
				_ = bn.backward(ctx, g, y, z, m, nil, part)
			}
			b.ReportMetric(float64(m*c)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}

// BenchmarkPool times forward+backward of nin4's pooling layers at batch 128.
func BenchmarkPool(b *testing.B) {
	cases := []struct {
		name string
		p    pool2d
		in   shape
	}{
		{"max-3x3s2-32px-96ch", pool2d{kind: poolMax, k: 3, stride: 2, pad: 1}, shape{N: 128, H: 32, W: 32, C: 96}},
		{"avg-3x3s2-16px-192ch", pool2d{kind: poolAvg, k: 3, stride: 2, pad: 1}, shape{N: 128, H: 16, W: 16, C: 192}},
		{"max-2x2s2-32px-32ch", pool2d{kind: poolMax, k: 2, stride: 2}, shape{N: 128, H: 32, W: 32, C: 32}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(5, 6))
			out := c.p.outShape(c.in)
			c.p.argmax = make([]int32, out.size())
			x, y, dx := randSlice(rng, c.in.size()), make([]float32, out.size()), make([]float32, c.in.size())
			for b.Loop() {
				c.p.forward(x, c.in, y)
				c.p.backward(y, c.in, dx)
			}
			b.ReportMetric(float64(c.in.size())*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}

// BenchmarkHeadAndLoss times global average pooling, the linear head and the loss at batch 128.
func BenchmarkHeadAndLoss(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	in := shape{N: 128, H: 8, W: 8, C: 192}
	h := &head{cin: 192, classes: 4, w: randSlice(rng, 768), b: randSlice(rng, 4), dw: make([]float32, 768), db: make([]float32, 4)}
	x, dx := randSlice(rng, in.size()), make([]float32, in.size())
	feat, dfeat, logits, dl := make([]float32, 128*192), make([]float32, 128*192), make([]float32, 512), make([]float32, 512)
	labels := make([]int, 128)
	for b.Loop() {
		h.forward(x, in, feat, logits)
		_, _, _ = SoftmaxCrossEntropy(logits, labels, 4, 1, dl)
		h.backward(dl, feat, in, dfeat, dx)
	}
}

// BenchmarkIm2colCache times training steps with the im2col cache (the default workspace
// target) and without it (target 0: backward rebuilds each chunk's im2col in L2-sized
// scratch), in the same run, for the networks whose peak memory the cache decides.
func BenchmarkIm2colCache(b *testing.B) {
	for _, c := range []benchCase{
		benchCaseOf("small-32"), benchCaseOf("nin4-32"), benchCaseOf("resnet18-64"), benchCaseOf("resnet18-small-32"),
	} {
		for _, target := range []struct {
			name   string
			floats int
		}{{"cache", workspaceTarget}, {"nocache", 0}} {
			b.Run(c.name+"/"+target.name, func(b *testing.B) {
				defer func(v, r int) { workspaceTarget, resNetWorkspaceTarget = v, r }(workspaceTarget, resNetWorkspaceTarget)
				workspaceTarget, resNetWorkspaceTarget = target.floats, target.floats
				benchConfig(b, c.cfg, c.size)
			})
		}
	}
}
