package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBucketsOverlapWithOtherCollectives: buckets handed to a Reduction
// while small AllReduceSum calls (as SyncBatchNorm makes) interleave with
// them, in the same order on every member, all end correct.
func TestBucketsOverlapWithOtherCollectives(t *testing.T) {
	const n = 3
	nodes := startNodes(t, n, testConfig())
	rings := joinAll(t, nodes, 1)
	sizes := []int{5000, 1, 777, 3000}
	buckets := make([][][]float32, len(sizes)) // bucket, member, values
	stats := make([][][]float32, len(sizes))
	for b, size := range sizes {
		buckets[b] = randomInputs(uint64(b), n, size)
		stats[b] = randomInputs(uint64(100+b), n, 64)
	}
	wantB, wantS := make([][]float32, len(sizes)), make([][]float32, len(sizes))
	for b := range sizes {
		wantB[b], wantS[b] = ringOrderSum(buckets[b], false), ringOrderSum(stats[b], false)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for m, r := range rings {
		wg.Go(func() { errs[m] = reduceBuckets(r, m, buckets, stats) })
	}
	wg.Wait()
	for m, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", m, err)
		}
		for b := range sizes {
			if !sameBitsF32(buckets[b][m], wantB[b]) || !sameBitsF32(stats[b][m], wantS[b]) {
				t.Fatalf("rank %d bucket %d: wrong sum", m, b)
			}
		}
	}
}

// reduceBuckets is one member's training step: each bucket is added as soon
// as it is "computed", with a statistics all-reduce in between.
func reduceBuckets(r *Ring, m int, buckets, stats [][][]float32) error {
	red := r.Start(context.Background(), 9)
	for b := range buckets {
		if err := red.Add(buckets[b][m]); err != nil {
			return err
		}
		if err := r.AllReduceSum(context.Background(), stats[b][m]); err != nil {
			return err
		}
	}
	if err := red.Wait(); err != nil {
		return err
	}
	if err := red.Add([]float32{1}); err == nil {
		return errors.New("Add after Wait succeeded")
	}
	return nil
}

// TestBF16WithinBoundAndIdentical: with bf16 on the wire, every member
// still ends bit-identical (equal to the ring-order sum with the same
// roundings), within N*2^-8*sum|x| of the exact sum.
func TestBF16WithinBoundAndIdentical(t *testing.T) {
	const n = 4
	cfg := testConfig()
	cfg.Compression = BF16
	nodes := startNodes(t, n, cfg)
	rings := joinAll(t, nodes, 1)
	in := randomInputs(11, n, 10_001)
	bufs := clone(in)
	checkReduce(t, rings, 1, bufs, ringOrderSum(in, true), Sum)
	var worst float64
	for i := range bufs[0] {
		var exact, abs float64
		for m := range n {
			exact += float64(in[m][i])
			abs += math.Abs(float64(in[m][i]))
		}
		bound := n * math.Ldexp(1, -8) * abs
		errAbs := math.Abs(float64(bufs[0][i]) - exact)
		if errAbs > bound {
			t.Fatalf("value %d: %v, exact %v, error %g over bound %g", i, bufs[0][i], exact, errAbs, bound)
		}
		worst = max(worst, errAbs/max(bound, 1e-30))
	}
	t.Logf("largest error: %.2f of the bound", worst)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		field  string
		mutate func(*Config)
	}{
		{"", func(*Config) {}},
		{"Job", func(c *Config) { c.Job = "" }},
		{"Timeout", func(c *Config) { c.Timeout = 0 }},
		{"ChunkBytes", func(c *Config) { c.ChunkBytes = MaxChunkBytes + 1 }},
		{"ChunkBytes", func(c *Config) { c.ChunkBytes = 10 }},
		{"Streams", func(c *Config) { c.Streams = 0 }},
		{"Streams", func(c *Config) { c.Streams = MaxStreams + 1 }},
		{"Compression", func(c *Config) { c.Compression = 7 }},
		{"Transport", func(c *Config) { c.Transport = 2 }},
		{"TLS.Certificates", func(c *Config) { c.TLS = &tls.Config{} }},
	} {
		cfg := DefaultConfig()
		tc.mutate(&cfg)
		err := cfg.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("default config: %v", err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field)):
			t.Errorf("bad %s: error %v does not name it", tc.field, err)
		}
	}
	if _, err := NewService(Config{}); err == nil {
		t.Error("NewService accepted a zero Config")
	}
}

func TestParseTransport(t *testing.T) {
	for _, tr := range []Transport{Direct, InStream} {
		if got, err := ParseTransport(tr.String()); err != nil || got != tr {
			t.Errorf("ParseTransport(%q) = %v, %v", tr, got, err)
		}
	}
	if _, err := ParseTransport("udp"); err == nil || !strings.Contains(err.Error(), "udp") {
		t.Errorf("ParseTransport(udp) = %v, want an error naming it", err)
	}
}

func TestNewRingChecksMembers(t *testing.T) {
	svc, err := NewService(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		members []string
		rank    int
	}{
		{nil, 0}, {[]string{"a:1"}, 1}, {[]string{"a:1", "a:1"}, 0}, {[]string{"a:1", ""}, 0},
	} {
		if r, err := svc.NewRing(context.Background(), 1, tc.members, tc.rank); err == nil {
			_ = r.Close()
			t.Errorf("members %q rank %d accepted", tc.members, tc.rank)
		}
	}
	r, err := svc.NewRing(context.Background(), 1, []string{"a:1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := []float32{1, 2, 3}
	if err := r.AllReduce(context.Background(), 1, buf, Mean); err != nil || buf[2] != 3 {
		t.Fatalf("one-member ring: %v %v", err, buf)
	}
	_ = r.Close()
	if err := r.AllReduceSum(context.Background(), buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("AllReduce after Close: %v, want ErrClosed", err)
	}
}

// TestJoinRetryAfterFailure: a join that fails (the next member is not
// there yet) can be retried with the same generation.
func TestJoinRetryAfterFailure(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 200 * time.Millisecond
	nodes := startNodes(t, 2, cfg)
	if r, err := nodes[0].svc.NewRing(context.Background(), 3, addrs(nodes), 0); !errors.Is(err, ErrTimeout) {
		if r != nil {
			_ = r.Close()
		}
		t.Fatalf("join without the next member: %v, want ErrTimeout", err)
	}
	rings := joinAll(t, nodes, 3)
	in := randomInputs(1, 2, 100)
	checkReduce(t, rings, 1, clone(in), ringOrderSum(in, false), Sum)
}

// TestCancelledBeforeStartKeepsRing: a collective whose context is already
// done is refused without breaking the ring.
func TestCancelledBeforeStartKeepsRing(t *testing.T) {
	nodes := startNodes(t, 2, testConfig())
	rings := joinAll(t, nodes, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rings[0].AllReduce(ctx, 1, []float32{1}, Sum); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled AllReduce: %v, want context.Canceled", err)
	}
	in := randomInputs(2, 2, 10)
	checkReduce(t, rings, 2, clone(in), ringOrderSum(in, false), Sum)
}
