package gemm

import (
	"fmt"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShape is one GEMM of the nin4 network at 32x32 and batch 128, as model/conv.go calls it.
type benchShape struct {
	name           string
	transA, transB bool
	m, n, k        int
}

// convShapes returns, for each nin4 convolution, the three products model/conv.go computes on
// channels-last activations with weights stored C_out x K: forward Y = X*W^T (m = rows,
// n = C_out, k = K), input gradient dX = dY*W (m = rows, n = K, k = C_out) and weight gradient
// dW = dY^T*X (m = C_out, n = K, k = rows). Rows are batch*H*W, or the im2col chunk of whole
// images that fits model's 8 Mi-float scratch (109 images at 32x32, 13 at 16x16, 75 at 8x8).
// A square shape is the usual reference point.
func convShapes() []benchShape {
	convs := []struct {
		name           string
		rows, cout, kd int
	}{
		{"b1conv5x5", 109 * 1024, 192, 75},
		{"b1conv1x1a", 131072, 160, 192},
		{"b1conv1x1b", 131072, 96, 160},
		{"b2conv5x5", 13 * 256, 192, 2400},
		{"b2conv1x1", 32768, 192, 192},
		{"b3conv3x3", 75 * 64, 192, 1728},
		{"b3conv1x1", 8192, 192, 192},
	}
	shapes := []benchShape{{"square1024", false, false, 1024, 1024, 1024}}
	for _, c := range convs {
		shapes = append(shapes,
			benchShape{c.name + "-fwd", false, true, c.rows, c.cout, c.kd},
			benchShape{c.name + "-dX", false, false, c.rows, c.kd, c.cout},
			benchShape{c.name + "-dW", true, false, c.cout, c.kd, c.rows})
	}
	return shapes
}

// operands returns random A, B and C for s with tight strides.
func (s benchShape) operands() (a []float32, lda int, b []float32, ldb int, c []float32) {
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%97)/97 - 0.5
		}
		return x
	}
	lda, ldb = s.k, s.n
	if s.transA {
		lda = s.m
	}
	if s.transB {
		ldb = s.k
	}
	return fill(s.m * s.k), lda, fill(s.k * s.n), ldb, fill(s.m * s.n)
}

// BenchmarkSgemm measures Sgemm on the convolution shapes with 1 and 2 goroutines and gonum's
// pure-Go Sgemm (GOMAXPROCS goroutines) as the same-run baseline, reporting GFLOPS.
func BenchmarkSgemm(b *testing.B) {
	for _, s := range convShapes() {
		b.Run(s.name, func(b *testing.B) { benchShapeRun(b, s) })
	}
}

// benchShapeRun runs the Sgemm and gonum sub-benchmarks of one shape.
func benchShapeRun(b *testing.B, s benchShape) {
	{
		a, lda, bm, ldb, c := s.operands()
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s-t%d", Kernel(), th), func(b *testing.B) {
				defer SetThreads(SetThreads(th))
				c0 := cpuSeconds()
				for b.Loop() {
					Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				reportFlops(b, flops, c0)
			})
		}
		b.Run(fmt.Sprintf("gonum-t%d", runtime.GOMAXPROCS(0)), func(b *testing.B) {
			tA, tB := blas.NoTrans, blas.NoTrans
			if s.transA {
				tA = blas.Trans
			}
			if s.transB {
				tB = blas.Trans
			}
			c0 := cpuSeconds()
			for b.Loop() {
				gonum.Implementation{}.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
			}
			reportFlops(b, flops, c0)
		})
	}
}

// reportFlops reports GFLOPS (wall clock) and GFLOPS per CPU-second since c0 (cpuGFLOPS: per-core
// efficiency, less disturbed by other processes on a shared machine; only for runs of at least
// 0.1 CPU-second).
func reportFlops(b *testing.B, flops, c0 float64) {
	total := flops * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOPS")
	if cpu := cpuSeconds() - c0; cpu > 0.1 && c0 > 0 { // shorter runs are below the clock's grain
		b.ReportMetric(total/cpu/1e9, "cpuGFLOPS")
	}
}

// BenchmarkInPlaceB compares reading an untransposed B in place with packing it, on the
// weight-gradient shapes (few row tiles, K huge) where the kernel chooses in place; one
// goroutine, same run.
func BenchmarkInPlaceB(b *testing.B) {
	for _, s := range convShapes() {
		if !s.transA || s.m > best.inPlaceBRows*best.mr {
			continue
		}
		a, lda, bm, ldb, c := s.operands()
		for _, rows := range []int{0, best.inPlaceBRows} {
			kn := best
			kn.inPlaceBRows = rows
			b.Run(fmt.Sprintf("%s/inplace=%v", s.name, rows > 0), func(b *testing.B) {
				c0 := cpuSeconds()
				for b.Loop() {
					sgemm(kn, 1, s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				reportFlops(b, 2*float64(s.m)*float64(s.n)*float64(s.k), c0)
			})
		}
	}
}

// BenchmarkSmall measures the per-call overhead on the classifier head's shapes (batch 128,
// 192 features, 4 classes) and a small square; it reports allocations.
func BenchmarkSmall(b *testing.B) {
	for _, s := range []benchShape{
		{"head-fwd", false, true, 128, 4, 192},
		{"head-dW", true, false, 4, 192, 128},
		{"square64", false, false, 64, 64, 64},
	} {
		a, lda, bm, ldb, c := s.operands()
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			c0 := cpuSeconds()
			for b.Loop() {
				Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
			}
			reportFlops(b, 2*float64(s.m)*float64(s.n)*float64(s.k), c0)
		})
	}
}

// BenchmarkKernels runs the whole multiply with each kernel this CPU supports (the fallbacks
// included) on one goroutine, on the 1x1 convolution of block 2 (32768 x 192 x 192).
func BenchmarkKernels(b *testing.B) {
	s := benchShape{"b2conv1x1-fwd", false, true, 32768, 192, 192}
	a, lda, bm, ldb, c := s.operands()
	for _, kn := range kernels {
		b.Run(s.name+"/"+kn.name, func(b *testing.B) {
			c0 := cpuSeconds()
			for b.Loop() {
				sgemm(kn, 1, s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
			}
			reportFlops(b, 2*float64(s.m)*float64(s.n)*float64(s.k), c0)
		})
	}
}

// BenchmarkResidentB compares the B-resident loop order (all of K packed once, each block of C
// summed over K while in L2) with the classic one on the forward shapes with large K; one
// goroutine, same run.
func BenchmarkResidentB(b *testing.B) {
	for _, s := range convShapes() {
		if s.k < 1000 || !best.residentFits(s.k, roundUp(min(s.n, best.nc), best.nr)) {
			continue
		}
		a, lda, bm, ldb, c := s.operands()
		for _, bytes := range []int{0, best.residentBBytes} {
			kn := best
			kn.residentBBytes = bytes
			b.Run(fmt.Sprintf("%s/resident=%v", s.name, bytes > 0), func(b *testing.B) {
				c0 := cpuSeconds()
				for b.Loop() {
					sgemm(kn, 1, s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				reportFlops(b, 2*float64(s.m)*float64(s.n)*float64(s.k), c0)
			})
		}
	}
}

// BenchmarkInPlaceA compares reading an untransposed A in place (row-major kernel) with packing
// it, on the forward and input-gradient shapes; one goroutine, same run.
func BenchmarkInPlaceA(b *testing.B) {
	for _, s := range convShapes() {
		if s.transA || best.rowMajor == nil {
			continue
		}
		a, lda, bm, ldb, c := s.operands()
		for _, inPlace := range []bool{false, true} {
			kn := best
			if !inPlace {
				kn.rowMajor, kn.halfRow = nil, nil
			}
			b.Run(fmt.Sprintf("%s/inplace=%v", s.name, inPlace), func(b *testing.B) {
				c0 := cpuSeconds()
				for b.Loop() {
					sgemm(kn, 1, s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				reportFlops(b, 2*float64(s.m)*float64(s.n)*float64(s.k), c0)
			})
		}
	}
}
