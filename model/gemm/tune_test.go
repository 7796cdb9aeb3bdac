package gemm

import (
	"fmt"
	"testing"
)

func BenchmarkTune(b *testing.B) {
	for _, s := range convShapes() {
		if !s.transA {
			continue
		}
		a, lda, bm, ldb, c := s.operands()
		for _, ip := range []int{0, 16} {
			kn := kernels[0]
			kn.inPlaceBRows = ip
			b.Run(fmt.Sprintf("%s/inplace%d", s.name, ip), func(b *testing.B) {
				c0 := cpuSeconds()
				for b.Loop() {
					sgemm(kn, 1, s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				reportFlops(b, 2*float64(s.m*s.n*s.k), c0)
			})
		}
	}
}
