package gemm

import (
	"fmt"
	"testing"
)

func BenchmarkTune(b *testing.B) {
	s := benchShape{"square1024", false, false, 1024, 1024, 1024}
	a, lda, bm, ldb, c := s.operands()
	for _, kc := range []int{128, 192, 256, 384} {
		for _, mc := range []int{70, 140, 280, 560} {
			kn := kernels[0]
			kn.kc, kn.mc = kc, mc
			b.Run(fmt.Sprintf("kc%d-mc%d", kc, mc), func(b *testing.B) {
				c0 := cpuSeconds()
				for b.Loop() {
					sgemm(kn, 1, s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/(cpuSeconds()-c0)/1e9, "cpuGFLOPS")
			})
		}
	}
}
