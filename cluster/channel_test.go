package cluster

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
)

// joinChannel makes every node join generation gen on channel ch; the rings
// are closed at the end of t.
func joinChannel(t testing.TB, nodes []*node, ch Channel, gen uint64, enc Encoding) []*Ring {
	t.Helper()
	rings := make([]*Ring, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			rings[i], errs[i] = n.svc.NewChannelRing(context.Background(), ch, gen, addrs(nodes), i, enc)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d joins generation %d on %v: %v", i, gen, ch, err)
		}
	}
	t.Cleanup(func() { closeAll(rings) })
	return rings
}

// TestChannelsAreIndependent: a bulk all-reduce that one member has not
// started yet does not hold back the control channel. On one ring the
// control sums would queue behind it and never finish (the last member only
// starts its bucket after them), so the test deadlocks and times out if the
// channels share an order.
func TestChannelsAreIndependent(t *testing.T) {
	const n = 3
	nodes := startNodes(t, n, testConfig())
	control := joinAll(t, nodes, 4)
	bulk := joinChannel(t, nodes, Bulk, 4, Float32)
	buckets := randomInputs(1, n, 300_000)
	stats := [][][]float32{randomInputs(2, n, 64), randomInputs(3, n, 7)}
	wantB := ringOrderSum(buckets)
	wantS := [][]float32{ringOrderSum(stats[0]), ringOrderSum(stats[1])}
	in := clone(buckets)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for m := range n {
		wg.Go(func() {
			errs[m] = overlapStep(control[m], bulk[m], in[m], [][]float32{stats[0][m], stats[1][m]}, m == n-1)
		})
	}
	wg.Wait()
	for m, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", m, err)
		}
		if !sameBitsF32(in[m], wantB) || !sameBitsF32(stats[0][m], wantS[0]) || !sameBitsF32(stats[1][m], wantS[1]) {
			t.Fatalf("rank %d: wrong sum", m)
		}
	}
	if bulk[0].Channel() != Bulk || control[0].Channel() != Control {
		t.Fatalf("channels %v %v", bulk[0].Channel(), control[0].Channel())
	}
}

// overlapStep is one member's step: the bucket is started on bulk (by the
// late member only after the control sums), the sums run on control.
func overlapStep(control, bulk *Ring, bucket []float32, stats [][]float32, late bool) error {
	ctx := context.Background()
	var p *Pending
	if !late {
		p = bulk.Start(ctx, bucket)
	}
	for _, s := range stats {
		if err := control.AllReduceSum(ctx, s); err != nil {
			return err
		}
	}
	if late {
		p = bulk.Start(ctx, bucket)
	}
	return p.Wait()
}

// TestChannelGenerationsAreSeparate: joining a generation on one channel
// does not make it stale on another, and each channel refuses its own
// older generations with a message naming the channel.
func TestChannelGenerationsAreSeparate(t *testing.T) {
	svc, err := NewService(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ch := range []Channel{Control, Bulk} {
		r, err := svc.NewChannelRing(ctx, ch, 5, []string{"a:1"}, 0, Float32)
		if err != nil {
			t.Fatalf("join generation 5 on %v: %v", ch, err)
		}
		defer r.Close()
	}
	_, err = svc.NewChannelRing(ctx, Bulk, 3, []string{"a:1"}, 0, Float32)
	if err == nil || !strings.Contains(err.Error(), "(bulk)") {
		t.Fatalf("stale bulk generation: %v, want an error naming the channel", err)
	}
}

// TestBF16WithinBoundAndIdentical: with bfloat16 on the wire every member
// still ends bit-identical (equal to the ring-order sum with the same
// roundings), within N*2^-8*sum|x| of the exact sum, on both transports;
// the control ring of the same generation stays exact.
func TestBF16WithinBoundAndIdentical(t *testing.T) {
	for _, tr := range []Transport{Direct, InStream} {
		t.Run(tr.String(), func(t *testing.T) {
			const n = 4
			cfg := testConfig()
			cfg.Transport = tr
			nodes := startNodes(t, n, cfg)
			control := joinAll(t, nodes, 1)
			bulk := joinChannel(t, nodes, Bulk, 1, BFloat16)
			in := randomInputs(11, n, 300_001)
			bufs := clone(in)
			for r, err := range reduceAll(bulk, 1, bufs) {
				if err != nil {
					t.Fatalf("rank %d: %v", r, err)
				}
			}
			want := bf16RingOrderSum(in)
			for r := range bufs {
				if !sameBitsF32(bufs[r], want) {
					t.Fatalf("rank %d differs from the bfloat16 ring-order sum", r)
				}
			}
			checkBF16Bound(t, in, bufs[0])
			exact := clone(in)
			for r, err := range reduceAll(control, 2, exact) {
				if err != nil || !sameBitsF32(exact[r], ringOrderSum(in)) {
					t.Fatalf("control rank %d: %v, or not the exact sum", r, err)
				}
			}
		})
	}
}

// bf16RingOrderSum is ringOrderSum with the roundings of a bfloat16 ring:
// each partial sum is rounded before it is sent, and the owner of a
// segment keeps the rounded total it sends around.
func bf16RingOrderSum(in [][]float32) []float32 {
	n := len(in)
	out := make([]float32, len(in[0]))
	p := plan{n: n, length: len(out), pieceElems: 1, lanes: 1}
	for c := range n {
		lo, hi := p.segment(c)
		for i := lo; i < hi; i++ {
			acc := in[c][i]
			for j := 1; j < n; j++ {
				acc = in[(c+j)%n][i] + bf16ToF32(f32ToBF16(acc))
			}
			out[i] = bf16ToF32(f32ToBF16(acc))
		}
	}
	return out
}

// checkBF16Bound wants every value of got within N*2^-8*sum|x| of the
// exact sum.
func checkBF16Bound(t *testing.T, in [][]float32, got []float32) {
	t.Helper()
	n := len(in)
	var worst float64
	for i := range got {
		var exact, abs float64
		for m := range n {
			exact += float64(in[m][i])
			abs += math.Abs(float64(in[m][i]))
		}
		bound := float64(n) * math.Ldexp(1, -8) * abs
		e := math.Abs(float64(got[i]) - exact)
		if e > bound {
			t.Fatalf("value %d: %v, exact %v, error %g over the bound %g", i, got[i], exact, e, bound)
		}
		worst = max(worst, e/max(bound, 1e-30))
	}
	t.Logf("largest error: %.2f of the bound", worst)
}
