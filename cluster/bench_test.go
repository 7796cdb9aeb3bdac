package cluster

import (
	"fmt"
	"testing"
)

// BenchmarkAllReduce measures the ring on loopback; compare with
// `whorl bench allreduce`, which also measures raw TCP in the same run.
func BenchmarkAllReduce(b *testing.B) {
	for _, c := range []struct{ n, bytes int }{{2, 16 << 20}, {4, 16 << 20}, {4, 1 << 10}} {
		b.Run(fmt.Sprintf("N=%d/bytes=%d", c.n, c.bytes), func(b *testing.B) {
			cfg := DefaultConfig()
			nodes := startNodes(b, c.n, cfg)
			rings := joinAll(b, nodes, 1)
			bufs := randomInputs(1, c.n, c.bytes/4)
			b.SetBytes(int64(c.bytes))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for r, err := range reduceAll(rings, uint64(i), bufs, Sum) {
					if err != nil {
						b.Fatalf("rank %d: %v", r, err)
					}
				}
			}
		})
	}
}
