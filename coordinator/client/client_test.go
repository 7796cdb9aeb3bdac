package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/whorl-ml/whorl/cluster"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Roles of a fake coordinator in the client tests.
const (
	roleLeader   = "leader"   // answers (or fails with appErr)
	roleFollower = "follower" // answers NOT_LEADER naming hint
	roleBlocked  = "blocked"  // handlers block until the call ends: a cut-off leader
)

// fakeCoord is a CoordinatorService over real gRPC on loopback whose
// answers depend on its role.
type fakeCoord struct {
	pb.UnimplementedCoordinatorServiceServer
	role   string
	hint   string // the leader a follower names
	appErr error
	blob   []byte
	calls  atomic.Int32
	// stall makes the first stall calls block like roleBlocked.
	stall atomic.Int32
}

// check is the common part of every handler.
func (f *fakeCoord) check(ctx context.Context) error {
	f.calls.Add(1)
	if f.stall.Add(-1) >= 0 {
		<-ctx.Done()
		return Status(ctx.Err())
	}
	switch f.role {
	case roleBlocked:
		<-ctx.Done()
		return Status(ctx.Err())
	case roleFollower:
		return Status(&NotLeaderError{LeaderID: "leader", LeaderAddr: f.hint})
	}
	return Status(f.appErr)
}

func (f *fakeCoord) JobStatus(ctx context.Context, _ *pb.JobStatusRequest) (*pb.JobStatusResponse, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	return &pb.JobStatusResponse{JobId: "job-1"}, nil
}

func (f *fakeCoord) GetAssignment(ctx context.Context, _ *pb.GetAssignmentRequest) (*pb.GetAssignmentResponse, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	return &pb.GetAssignmentResponse{JobId: "job-1", Generation: 7}, nil
}

func (f *fakeCoord) FetchCheckpoint(req *pb.FetchCheckpointRequest, stream grpc.ServerStreamingServer[pb.FetchCheckpointResponse]) error {
	if err := f.check(stream.Context()); err != nil {
		return err
	}
	sum := sha256.Sum256(f.blob)
	info := &pb.Checkpoint{Digest: hex.EncodeToString(sum[:]), Size: uint64(len(f.blob))}
	if err := stream.Send(&pb.FetchCheckpointResponse{Msg: &pb.FetchCheckpointResponse_Info{Info: info}}); err != nil {
		return err
	}
	return stream.Send(&pb.FetchCheckpointResponse{Msg: &pb.FetchCheckpointResponse_Chunk{Chunk: f.blob}})
}

func (f *fakeCoord) CommitCheckpoint(stream grpc.ClientStreamingServer[pb.CommitCheckpointRequest, pb.CommitCheckpointResponse]) error {
	if err := f.check(stream.Context()); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
	}
	return stream.SendAndClose(&pb.CommitCheckpointResponse{Checkpoint: &pb.Checkpoint{Digest: first.GetHeader().GetSha256()}})
}

// serveFake starts f on a loopback port and returns its address.
func serveFake(t *testing.T, f *fakeCoord) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterCoordinatorServiceServer(srv, f)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// blackHole is a listener that accepts TCP connections and never sends a
// byte: a coordinator whose packets are dropped, as far as gRPC can tell.
func blackHole(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// testAttempt is the tests' AttemptTimeout.
const testAttempt = 300 * time.Millisecond

// newTestClient returns a client over addrs with short bounds.
func newTestClient(t *testing.T, addrs ...string) *Client {
	t.Helper()
	c, err := New(Config{Addrs: addrs, AttemptTimeout: testAttempt, LongPollMargin: 200 * time.Millisecond,
		CommitTimeout: 5 * time.Second, RetryTimeout: 20 * time.Second, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestClientFailover lists an unreachable or stuck coordinator first: every
// kind of call must reach the leader within about one attempt timeout and
// remember it.
func TestClientFailover(t *testing.T) {
	blob := []byte("checkpoint bytes")
	calls := map[string]func(context.Context, *Client) error{
		"unary": func(ctx context.Context, c *Client) error { _, err := c.JobStatus(ctx); return err },
		"long poll": func(ctx context.Context, c *Client) error {
			_, err := c.GetAssignment(ctx, &pb.GetAssignmentRequest{Wait: durationpb.New(100 * time.Millisecond)})
			return err
		},
		"fetch stream": func(ctx context.Context, c *Client) error {
			_, data, err := c.FetchCheckpoint(ctx, "")
			if err == nil && string(data) != string(blob) {
				t.Errorf("fetched %q, want %q", data, blob)
			}
			return err
		},
		"upload stream": func(ctx context.Context, c *Client) error {
			_, err := c.CommitCheckpoint(ctx, &pb.CheckpointHeader{WorkerId: "w"}, blob)
			return err
		},
	}
	tests := []struct {
		name string
		// first returns the address listed first, given the leader's.
		first func(t *testing.T, leader string) string
		max   time.Duration
	}{
		{"black hole", func(t *testing.T, _ string) string { return blackHole(t) }, testAttempt + 400*time.Millisecond},
		{"refused", func(t *testing.T, _ string) string {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			lis.Close()
			return lis.Addr().String()
		}, 400 * time.Millisecond},
		{"follower", func(t *testing.T, leader string) string {
			return serveFake(t, &fakeCoord{role: roleFollower, hint: leader})
		}, 400 * time.Millisecond},
		// A stale follower names a leader that is cut off: the client
		// must not go back and forth between them.
		{"follower naming a black hole", func(t *testing.T, _ string) string {
			return serveFake(t, &fakeCoord{role: roleFollower, hint: blackHole(t)})
		}, 2*testAttempt + 600*time.Millisecond},
	}
	for _, tc := range tests {
		for name, call := range calls {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				leaderF := &fakeCoord{role: roleLeader, blob: blob}
				leader := serveFake(t, leaderF)
				stuck := tc.first(t, leader)
				c := newTestClient(t, stuck, leader)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				start := time.Now()
				if err := call(ctx, c); err != nil {
					t.Fatalf("call: %v", err)
				}
				took := time.Since(start)
				if took > tc.max {
					t.Errorf("call took %v, want at most %v", took, tc.max)
				}
				if got := c.Leader(); got != leader {
					t.Errorf("client calls %s after the call, want the leader %s", got, leader)
				}
				start = time.Now()
				if err := call(ctx, c); err != nil || time.Since(start) > testAttempt {
					t.Errorf("second call: %v after %v, want the remembered leader at once", err, time.Since(start))
				}
				t.Logf("first call %v", took)
			})
		}
	}
}

// TestClientStuckLeader: a leader whose handlers never answer (a cut-off
// leader with its connection established) is left after one attempt.
func TestClientStuckLeader(t *testing.T) {
	leader := serveFake(t, &fakeCoord{role: roleLeader})
	stuckF := &fakeCoord{role: roleBlocked}
	stuck := serveFake(t, stuckF)
	c := newTestClient(t, stuck, leader)
	start := time.Now()
	if _, err := c.JobStatus(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < testAttempt || took > testAttempt+400*time.Millisecond {
		t.Errorf("call took %v, want one attempt timeout (%v) plus a little", took, testAttempt)
	}
	if n := stuckF.calls.Load(); n != 1 {
		t.Errorf("stuck leader called %d times, want 1", n)
	}
}

// TestClientSlowLeaderFollowed: a leader marked down after one slow answer
// is still called when every other coordinator names it.
func TestClientSlowLeaderFollowed(t *testing.T) {
	lf := &fakeCoord{role: roleLeader}
	lf.stall.Store(1)
	leader := serveFake(t, lf)
	follower := serveFake(t, &fakeCoord{role: roleFollower, hint: leader})
	c := newTestClient(t, leader, follower)
	start := time.Now()
	if _, err := c.JobStatus(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > testAttempt+400*time.Millisecond {
		t.Errorf("call took %v, want one attempt timeout and two quick attempts", took)
	}
	if n := lf.calls.Load(); n != 2 || c.Leader() != leader {
		t.Errorf("leader called %d times (want 2), client now at %s", n, c.Leader())
	}
}

// TestClientLongPollAbandoned: a long poll at a coordinator that another
// call finds unreachable is abandoned at once, not after its window.
func TestClientLongPollAbandoned(t *testing.T) {
	leader := serveFake(t, &fakeCoord{role: roleLeader})
	stuck := serveFake(t, &fakeCoord{role: roleBlocked})
	c := newTestClient(t, stuck, leader)
	ctx := context.Background()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := c.GetAssignment(ctx, &pb.GetAssignmentRequest{Wait: durationpb.New(10 * time.Second)})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := c.JobStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*testAttempt+400*time.Millisecond {
		t.Errorf("long poll took %v after its coordinator was found stuck, want about one attempt timeout", took)
	}
}

// TestClientLongPollBound: a long poll's attempt is bounded by its window
// plus the margin (1.2 s here), not by the unary attempt timeout, and the
// next attempt follows.
func TestClientLongPollBound(t *testing.T) {
	f := &fakeCoord{role: roleBlocked}
	c := newTestClient(t, serveFake(t, f))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.GetAssignment(ctx, &pb.GetAssignmentRequest{Wait: durationpb.New(time.Second)})
		done <- err
	}()
	for _, at := range []struct {
		after time.Duration
		calls int32
	}{{900 * time.Millisecond, 1}, {700 * time.Millisecond, 2}} {
		time.Sleep(at.after)
		if n := f.calls.Load(); n != at.calls {
			t.Errorf("%d attempts by now, want %d", n, at.calls)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want the caller's cancellation", err)
	}
}

// TestClientErrors: application errors end the call at once with their
// sentinel; the caller's deadline bounds a call at unreachable addresses.
func TestClientErrors(t *testing.T) {
	t.Run("application error", func(t *testing.T) {
		f := &fakeCoord{role: roleLeader, appErr: cluster.ErrStaleGeneration}
		c := newTestClient(t, serveFake(t, f), serveFake(t, &fakeCoord{role: roleLeader}))
		_, err := c.JobStatus(context.Background())
		if !errors.Is(err, cluster.ErrStaleGeneration) {
			t.Fatalf("err %v, want cluster.ErrStaleGeneration", err)
		}
		if n := f.calls.Load(); n != 1 {
			t.Errorf("%d calls, want 1 (no retry of an application error)", n)
		}
	})
	t.Run("caller deadline", func(t *testing.T) {
		c := newTestClient(t, blackHole(t), blackHole(t))
		ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.JobStatus(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the caller's deadline", err)
		}
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Errorf("call took %v, caller's deadline 1.2 s", took)
		}
	})
}

// testLogger discards the client's retry notes unless WHORL_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("WHORL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
