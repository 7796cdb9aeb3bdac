package cluster

import (
	"fmt"
	"math"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAllReduceMatchesRingOrderSum checks, for rings of 1 to 8 members and
// lengths that are odd, shorter than the ring, and many pieces long, that
// every member ends with exactly the serial sum in ring order (so the result
// is bit-identical everywhere and reproducible), on direct lanes and
// in-stream.
func TestAllReduceMatchesRingOrderSum(t *testing.T) {
	lengths := []int{0, 1, 3, 7, 255, 1001, 4099}
	for n := 1; n <= 8; n++ {
		for _, tr := range []Transport{Direct, InStream} {
			t.Run(fmt.Sprintf("N=%d/%v", n, tr), func(t *testing.T) {
				cfg := testConfig()
				cfg.Transport = tr
				reduceLengths(t, n, cfg, lengths)
			})
		}
	}
}

// reduceLengths forms a ring of n members with cfg and checks the sum of
// every length.
func reduceLengths(t *testing.T, n int, cfg Config, lengths []int) {
	nodes := startNodes(t, n, cfg)
	rings := joinAll(t, nodes, 1)
	for step, length := range lengths {
		in := randomInputs(uint64(100*n+length), n, length)
		checkReduce(t, rings, uint64(step), clone(in), ringOrderSum(in))
	}
}

func checkReduce(t *testing.T, rings []*Ring, step uint64, bufs [][]float32, want []float32) {
	t.Helper()
	for i, err := range reduceAll(rings, step, bufs) {
		if err != nil {
			t.Fatalf("sum of %d values: rank %d: %v", len(want), i, err)
		}
	}
	for i, b := range bufs {
		for j := range want {
			if math.Float32bits(b[j]) != math.Float32bits(want[j]) {
				t.Fatalf("sum of %d values: rank %d value %d = %v, want %v", len(want), i, j, b[j], want[j])
			}
		}
	}
}

func TestRingOrderSumMatchesReference(t *testing.T) {
	in := randomInputs(7, 5, 1003)
	got, want := RingOrderSum(in), ringOrderSum(in)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("value %d: %v, want %v", i, got[i], want[i])
		}
	}
}
