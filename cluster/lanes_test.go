package cluster

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// openStream opens a raw Transfer stream to addr on conn (nothing sent).
func openStream(t *testing.T, ctx context.Context, conn *grpc.ClientConn) ringv1.RingService_TransferClient {
	t.Helper()
	s, err := ringv1.NewRingServiceClient(conn).Transfer(ctx, grpc.CallContentSubtype(codecName))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialRaw is a plaintext connection to addr and a 20 s context, both
// closed at the end of t.
func dialRaw(t *testing.T, addr string) (*grpc.ClientConn, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(func() { cancel(); _ = conn.Close() })
	return conn, ctx
}

// TestLaneStreamsAreBounded floods a worker's ring service with Transfer
// streams that never say anything: past MaxOpenLanes a new one is refused
// at once with ResourceExhausted, the silent ones are ended after
// Config.Timeout (their slots freed), and a real lane opens afterwards.
func TestLaneStreamsAreBounded(t *testing.T) {
	cfg := testConfig()
	cfg.Streams, cfg.Timeout = 1, time.Second
	b := startNode(t, cfg)
	conn, ctx := dialRaw(t, b.addr)
	silent := make([]ringv1.RingService_TransferClient, MaxOpenLanes)
	// A hello of another job is refused, and frees its slot.
	other := openStream(t, ctx, conn)
	if err := other.SendMsg(&outChunk{hdr: &ringv1.TransferRequest{Job: "other"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a hello of another job: %v, want InvalidArgument", err)
	}
	for i := range silent {
		silent[i] = openStream(t, ctx, conn)
	}
	waitFor(t, "MaxOpenLanes streams held", func() bool { return b.svc.OpenLanes() == MaxOpenLanes })
	start := time.Now()
	extra := openStream(t, ctx, conn)
	if _, err := extra.Recv(); status.Code(err) != codes.ResourceExhausted || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("a stream past the cap: %v after %v, want ResourceExhausted at once", err, time.Since(start))
	}
	waitFor(t, "silent streams ended", func() bool { return b.svc.OpenLanes() == 0 })
	if _, err := silent[0].Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("a silent stream ended with %v, want DeadlineExceeded", err)
	}
	ring, err := b.svc.NewRing(context.Background(), 1, []string{startSink(t), b.addr}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	if _, err := fakeLane(t, b.addr, &ringv1.TransferRequest{Job: cfg.Job, Generation: 1, RingSize: 2}, false); err != nil {
		t.Fatalf("a real lane after the flood: %v", err)
	}
}

// TestTakenOverLaneEndsAtOnce: when the sender opens a lane again (a newer
// stream takes it over), the older stream is ended at once with Aborted,
// not held until the ring ends, so repeated opens hold one slot.
func TestTakenOverLaneEndsAtOnce(t *testing.T) {
	cfg := testConfig()
	cfg.Streams, cfg.Timeout = 1, 5*time.Second
	b := startNode(t, cfg)
	ring, err := b.svc.NewRing(context.Background(), 1, []string{startSink(t), b.addr}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	conn, ctx := dialRaw(t, b.addr)
	hello := &outChunk{hdr: &ringv1.TransferRequest{Job: cfg.Job, Generation: 1, RingSize: 2}}
	var streams []ringv1.RingService_TransferClient
	for range 10 {
		s := openStream(t, ctx, conn)
		if err := s.SendMsg(hello); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil { // the acknowledgement
			t.Fatalf("open the lane: %v", err)
		}
		streams = append(streams, s)
	}
	for i, s := range streams[:len(streams)-1] {
		start := time.Now()
		if _, err := s.Recv(); status.Code(err) != codes.Aborted || time.Since(start) > time.Second {
			t.Errorf("stream %d after a newer one took its lane: %v after %v, want Aborted at once", i, err, time.Since(start))
		}
	}
	waitFor(t, "one lane stream left", func() bool { return b.svc.OpenLanes() == 1 })
}
