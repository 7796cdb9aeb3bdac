package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// TestNonFiniteFindsEveryPosition puts a NaN, +Inf or -Inf at each position
// of binary32 and bfloat16 runs (the fast path's blocks and the tail) and
// wants its index; finite extremes pass.
func TestNonFiniteFindsEveryPosition(t *testing.T) {
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	finite := []float32{math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0, -1}
	for _, enc := range []ringv1.Encoding{ringv1.Encoding_ENCODING_FLOAT32, ringv1.Encoding_ENCODING_BFLOAT16} {
		for _, n := range []int{1, 15, 16, 17, 40} {
			vals := make([]float32, n)
			for i := range vals {
				vals[i] = finite[i%len(finite)]
				if enc == ringv1.Encoding_ENCODING_BFLOAT16 && math.Abs(float64(vals[i])) == math.MaxFloat32 {
					vals[i] = 1e38 // MaxFloat32 rounds to bfloat16 infinity
				}
			}
			b := make([]byte, n*bytesPerValue(enc))
			encodeValues(b, vals, enc)
			if got := nonFinite(b, enc); got != -1 {
				t.Fatalf("%v n=%d: finite values reported at %d", enc, n, got)
			}
			for pos := range n {
				for _, v := range bad {
					w := append([]float32(nil), vals...)
					w[pos] = v
					encodeValues(b, w, enc)
					if got := nonFinite(b, enc); got != pos {
						t.Fatalf("%v n=%d: %v at %d reported at %d", enc, n, v, pos, got)
					}
				}
			}
		}
	}
}

// TestNonFiniteChunkFailsTheRing: a member whose buffer holds a NaN makes
// the all-reduce fail at its successor with ErrNonFinite naming its rank
// (Direct and InStream lanes, float32 and bfloat16), and no member ends
// with the NaN in its buffer as a result.
func TestNonFiniteChunkFailsTheRing(t *testing.T) {
	for _, tr := range []Transport{Direct, InStream} {
		for _, enc := range []Encoding{Float32, BFloat16} {
			t.Run(fmt.Sprintf("%v/%v", tr, enc), func(t *testing.T) {
				cfg := testConfig()
				cfg.Transport = tr
				nodes := startNodes(t, 3, cfg)
				rings := joinChannel(t, nodes, Control, 1, enc)
				bufs := randomInputs(7, 3, 1000)
				bufs[1][517] = float32(math.NaN())
				errs := reduceAll(rings, 1, bufs)
				succ := -1
				for i, err := range errs {
					if errors.Is(err, ErrNonFinite) {
						succ = i
						if !strings.Contains(err.Error(), "(rank 1)") || !strings.Contains(err.Error(), "not finite") {
							t.Errorf("rank %d: %v, want the error to name rank 1 and the non-finite value", i, err)
						}
					}
				}
				if succ != 2 {
					t.Fatalf("errors %v: want rank 2 (rank 1's successor) to fail with ErrNonFinite", errs)
				}
				for i, b := range bufs {
					if i == 1 {
						continue
					}
					for j, v := range b {
						if math.IsNaN(float64(v)) {
							t.Fatalf("rank %d value %d is NaN after the refused all-reduce", i, j)
						}
					}
				}
			})
		}
	}
}

// BenchmarkNonFinite scans a 1 MiB chunk of finite binary32 values (the
// check every received chunk now passes), beside adding it into a buffer
// (what receiving already does with it).
func BenchmarkNonFinite(b *testing.B) {
	const n = 1 << 18
	src := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(src[4*i:], math.Float32bits(float32(i%1000)*0.001))
	}
	dst := make([]float32, n)
	b.Run("check", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for range b.N {
			if nonFinite(src, ringv1.Encoding_ENCODING_FLOAT32) >= 0 {
				b.Fatal("finite values reported")
			}
		}
	})
	b.Run("add", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for range b.N {
			addF32(dst, src)
		}
	})
}
