package coordinator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
)

// TestStopEndsBackgroundWork checks the ownership of background work: a
// goroutine started with spawn that waits on a detached context ends once
// stop closes (so Run's wait for bg is bounded), the request's cancellation
// does not reach it, and spawn refuses work after stop.
func TestStopEndsBackgroundWork(t *testing.T) {
	n := newNode(t)
	defer n.Close()
	req, cancelReq := context.WithCancel(context.Background())
	dctx, cancel := n.detach(req, time.Hour)
	defer cancel()
	if err := n.spawn(func() { <-dctx.Done() }); err != nil {
		t.Fatal(err)
	}
	cancelReq()
	if dctx.Err() != nil {
		t.Fatal("the request's cancellation reached the detached context")
	}
	n.closeStop()
	done := make(chan struct{})
	go func() { n.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("background work still running 5 s after stop")
	}
	if err := n.spawn(func() {}); !errors.Is(err, client.ErrShutdown) {
		t.Fatalf("spawn after stop: %v, want client.ErrShutdown", err)
	}
}
