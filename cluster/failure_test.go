package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// kill simulates the crash of a member: its server drops every connection
// and its ring aborts its own lanes without a clean close.
func kill(n *node, r *Ring) {
	n.gs.Stop()
	r.fail(errors.New("killed by the test"))
	_ = r.Close()
}

// TestPeerFailureFailsSurvivorsWithinDeadline: when a member stalls (never
// joins the collective) or dies in the middle of one, every other member's
// AllReduce returns an error naming a peer and the step within the
// deadline; nothing leaks; the survivors then rebuild the ring with a new
// generation and re-reduce the same buffers correctly. Both transports.
func TestPeerFailureFailsSurvivorsWithinDeadline(t *testing.T) {
	for _, tr := range []Transport{Direct, InStream} {
		t.Run(tr.String(), func(t *testing.T) { testPeerFailure(t, tr) })
	}
}

func testPeerFailure(t *testing.T, tr Transport) {
	for _, tc := range []struct {
		name string
		fail func(n *node, r *Ring)
	}{
		{"stall", func(*node, *Ring) {}},
		{"death", kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			cfg := testConfig()
			cfg.Timeout, cfg.Transport = time.Second, tr
			nodes := startNodes(t, 4, cfg)
			rings := joinAll(t, nodes, 1)
			const victim, step = 2, 7
			in := randomInputs(3, 4, 50_000)
			bufs := clone(in)
			time.AfterFunc(100*time.Millisecond, func() { tc.fail(nodes[victim], rings[victim]) })
			errs, took := survivorsReduce(rings, victim, step, bufs)
			for i, err := range errs {
				if i == victim {
					continue
				}
				checkFailure(t, i, err, took[i], cfg.Timeout)
			}
			survivors := []*node{nodes[0], nodes[1], nodes[3]}
			closeAll(rings)
			rebuilt := joinAll(t, survivors, 2)
			again := [][]float32{clone(in)[0], clone(in)[1], clone(in)[3]}
			checkReduce(t, rebuilt, step, again, ringOrderSum([][]float32{in[0], in[1], in[3]}))
			closeAll(rebuilt)
			for _, n := range nodes {
				n.gs.Stop()
			}
		})
	}
}

// survivorsReduce runs AllReduce on every ring but the victim's and returns
// each error and how long each call took.
func survivorsReduce(rings []*Ring, victim int, step uint64, bufs [][]float32) ([]error, []time.Duration) {
	errs := make([]error, len(rings))
	took := make([]time.Duration, len(rings))
	var wg sync.WaitGroup
	for i, r := range rings {
		if i == victim {
			continue
		}
		wg.Go(func() {
			start := time.Now()
			errs[i] = r.AllReduce(context.Background(), step, bufs[i])
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	return errs, took
}

func checkFailure(t *testing.T, rank int, err error, took, deadline time.Duration) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("rank %d: AllReduce succeeded without a member", rank)
	case !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrPeer):
		t.Errorf("rank %d: error is neither ErrTimeout nor ErrPeer: %v", rank, err)
	case !strings.Contains(err.Error(), "step 7") || !strings.Contains(err.Error(), "peer 127.0.0.1:"):
		t.Errorf("rank %d: error does not name the step and a peer: %v", rank, err)
	case took > deadline+time.Second:
		t.Errorf("rank %d: failed after %v, deadline %v", rank, took, deadline)
	}
	t.Logf("rank %d failed after %v: %v", rank, took.Round(time.Millisecond), err)
}

// TestBrokenRingRefusesFurtherCollectives: after a failure, the ring
// reports ErrBroken at once instead of running out of step.
func TestBrokenRingRefusesFurtherCollectives(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 300 * time.Millisecond
	nodes := startNodes(t, 2, cfg)
	rings := joinAll(t, nodes, 1)
	if err := rings[0].AllReduce(context.Background(), 1, make([]float32, 10)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("lonely AllReduce: %v, want ErrTimeout", err)
	}
	start := time.Now()
	err := rings[0].AllReduceSum(context.Background(), make([]float32, 10))
	if !errors.Is(err, ErrBroken) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("AllReduce on a broken ring: %v after %v, want ErrBroken at once", err, time.Since(start))
	}
}

// TestCloseLeavesCleanly: a member that closes right after its last
// collective does not make its neighbours' last collective fail, and their
// next one fails with ErrPeer instead of waiting for the deadline. Both
// transports.
func TestCloseLeavesCleanly(t *testing.T) {
	for _, tr := range []Transport{Direct, InStream} {
		t.Run(tr.String(), func(t *testing.T) { testCloseLeavesCleanly(t, tr) })
	}
}

func testCloseLeavesCleanly(t *testing.T, tr Transport) {
	cfg := testConfig()
	cfg.Transport = tr
	nodes := startNodes(t, 3, cfg)
	rings := joinAll(t, nodes, 1)
	in := randomInputs(5, 3, 20_000)
	want := ringOrderSum(in)
	bufs := clone(in)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, r := range rings {
		wg.Go(func() {
			errs[i] = r.AllReduce(context.Background(), 1, bufs[i])
			if i == 1 {
				_ = r.Close()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
		if !sameBitsF32(bufs[i], want) {
			t.Fatalf("rank %d: wrong sum", i)
		}
	}
	start := time.Now()
	var wg2 sync.WaitGroup
	for _, i := range []int{0, 2} {
		wg2.Go(func() { errs[i] = rings[i].AllReduce(context.Background(), 2, bufs[i]) })
	}
	wg2.Wait()
	for _, i := range []int{0, 2} {
		if !errors.Is(errs[i], ErrPeer) || time.Since(start) > cfg.Timeout/2 {
			t.Errorf("rank %d after its neighbour left: %v after %v, want ErrPeer promptly", i, errs[i], time.Since(start))
		}
	}
}
