package coordinator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestNewerIncarnationFencesOlder registers worker w from two processes
// (incarnations a, then b): every call of a is then refused with
// ErrReplaced naming b's ring address, and a's leave removes nothing;
// b's calls, and calls that name no incarnation, go through.
func TestNewerIncarnationFencesOlder(t *testing.T) {
	c, cl, ctx := longLeaseNode(t)
	for _, r := range []*pb.RegisterWorkerRequest{
		{WorkerId: "w", RingAddr: "127.0.0.1:1001", Incarnation: "a"},
		{WorkerId: "w", RingAddr: "127.0.0.1:1002", Incarnation: "b"},
	} {
		if _, err := cl.RegisterWorker(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	fenced := []struct {
		name string
		call func() error
	}{
		{"heartbeat", func() error {
			_, err := cl.HeartbeatWorker(ctx, &pb.HeartbeatRequest{WorkerId: "w", Incarnation: "a"})
			return err
		}},
		{"get assignment", func() error {
			_, err := cl.GetAssignment(ctx, &pb.GetAssignmentRequest{WorkerId: "w", Incarnation: "a"})
			return err
		}},
		{"leave", func() error {
			_, err := cl.LeaveWorker(ctx, &pb.LeaveWorkerRequest{WorkerId: "w", Incarnation: "a"})
			return err
		}},
	}
	for _, f := range fenced {
		err := f.call()
		if !errors.Is(err, client.ErrReplaced) || !strings.Contains(err.Error(), `worker "w"`) || !strings.Contains(err.Error(), "127.0.0.1:1002") {
			t.Errorf("%s by the replaced incarnation: %v, want ErrReplaced naming w and 127.0.0.1:1002", f.name, err)
		}
	}
	if w := c.node(0).State().Workers["w"]; w == nil || w.Incarnation != "b" {
		t.Fatalf("after the replaced process's calls: worker w = %+v, want incarnation b registered", w)
	}
	for _, inc := range []string{"b", ""} {
		if _, err := cl.HeartbeatWorker(ctx, &pb.HeartbeatRequest{WorkerId: "w", Incarnation: inc}); err != nil {
			t.Errorf("heartbeat with incarnation %q: %v", inc, err)
		}
	}
	if _, err := cl.LeaveWorker(ctx, &pb.LeaveWorkerRequest{WorkerId: "w", Incarnation: "b"}); err != nil {
		t.Fatalf("leave by the current incarnation: %v", err)
	}
	if _, ok := c.node(0).State().Workers["w"]; ok {
		t.Error("worker w still registered after its current process left")
	}
}

// longLeaseNode starts a one-node cluster whose workers never lose their
// lease (the tests drive them by hand) and a client of it, for the test.
func longLeaseNode(t *testing.T) (*tcluster, *client.Client, context.Context) {
	t.Helper()
	c := newCluster(t, 1, func(cfg *Config) { cfg.Lease = time.Hour })
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cl, err := dialTest(c.addrs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return c, cl, ctx
}
