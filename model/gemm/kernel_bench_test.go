package gemm

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkKernel measures each micro-kernel alone on packed panels that stay in cache: the
// ceiling the blocked driver can reach.
func BenchmarkKernel(b *testing.B) {
	for _, kn := range kernels {
		b.Run(kn.name, func(b *testing.B) {
			const kc = 256
			a := aligned(nil, kn.mr*kc)
			bp := aligned(nil, kn.nr*kc*8)
			c := aligned(nil, kn.mr*kn.nr)
			for i := range a {
				a[i] = 1e-3
			}
			for i := range bp {
				bp[i] = 1e-3
			}
			c0 := cpuSeconds()
			for b.Loop() {
				for j := range 8 {
					kn.stepMajor(kc, &a[0], kn.mr, &bp[j*kn.nr*kc], kn.nr, &c[0], kn.nr, 1, 1, kn.nr)
				}
			}
			reportFlops(b, 8*2*float64(kn.mr*kn.nr*kc), c0)
		})
	}
}

// BenchmarkPeak reports the machine's FMA ceiling (Peak) on 1 and 2 goroutines, to compare
// the kernel's rate with in the same run.
func BenchmarkPeak(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads-%d", threads), func(b *testing.B) {
			var g float64
			for b.Loop() {
				g, _ = Peak(threads, 200*time.Millisecond)
			}
			b.ReportMetric(g, "GFLOPS")
		})
	}
}
