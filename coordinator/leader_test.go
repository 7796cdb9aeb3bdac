package coordinator

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeaderRetriesBarrier fails a single node's first leader barrier: the
// leader must retry it and serve leader-only calls within two election
// timeouts of the failure, not answer NO_LEADER until the next election
// (which never comes for a single node).
func TestLeaderRetriesBarrier(t *testing.T) {
	failed := make(chan time.Time, 1)
	var calls atomic.Int32
	n := startNode(t, func(n *Node) {
		barrier := n.barrier
		n.barrier = func(d time.Duration) error {
			if calls.Add(1) == 1 {
				failed <- time.Now()
				return errors.New("injected barrier failure")
			}
			return barrier(d)
		}
	})
	var at time.Time
	select {
	case at = <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader never ran its barrier")
	}
	bound := 2 * n.cfg.RaftElectionTimeout
	ctx, cancel := context.WithDeadline(context.Background(), at.Add(bound))
	defer cancel()
	cl, err := dialTest([]string{n.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Register(ctx, "w1", "w1:9"); err != nil {
		t.Fatalf("register within %v of the failed barrier: %v", bound, err)
	}
	t.Logf("leader-only call served %v after the failed barrier (%d barrier calls)",
		time.Since(at).Round(time.Millisecond), calls.Load())
}
