package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// sink is a fake ring member that accepts every lane and drops its chunks.
type sink struct {
	ringv1.UnimplementedRingServiceServer
}

func (sink) Transfer(stream ringv1.RingService_TransferServer) error {
	for {
		m := new(inChunk)
		if err := stream.RecvMsg(m); err != nil {
			return nil
		}
		m.release()
		if m.hdr.GetSequence() == 0 {
			if err := stream.Send(&ringv1.TransferResponse{}); err != nil {
				return err
			}
		}
	}
}

func startSink(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	ringv1.RegisterRingServiceServer(gs, sink{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// fakeLane opens lane 0 to addr with the given opening header, offering a
// direct connection when direct is set (the receiver must accept it), and
// returns a function that sends chunks on the lane and the error of the
// acknowledgement.
func fakeLane(t *testing.T, addr string, hello *ringv1.TransferRequest, direct bool) (func(*outChunk) error, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = conn.Close() })
	stream, err := ringv1.NewRingServiceClient(conn).Transfer(ctx, grpc.CallContentSubtype(codecName))
	if err != nil {
		t.Fatal(err)
	}
	hello = proto.Clone(hello).(*ringv1.TransferRequest)
	hello.Direct = direct
	if err := stream.SendMsg(&outChunk{hdr: hello}); err != nil {
		t.Fatal(err)
	}
	ack, err := stream.Recv()
	if err != nil || !direct {
		return func(m *outChunk) error { return stream.SendMsg(m) }, err
	}
	if len(ack.GetDirectToken()) == 0 {
		t.Fatal("the receiver offered no direct connection")
	}
	c, err := handshakeDirect(dialTCP(t, addr), addr, ack.GetDirectToken(), nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := &frameWriter{c: c}
	return func(m *outChunk) error { return w.write(m) }, nil
}

// TestRejectsForeignChunks plays rank 0 of a two-member ring by hand
// against a real rank 1: a correct chunk is summed, while a chunk from
// another collective, step, generation, job, sender, buffer length, in an
// encoding other than the ring's (bfloat16 on a float32 ring), another channel, or a
// repeated one fails the collective with ErrRejected and is never summed,
// whether the chunks come in the stream or on a direct connection.
func TestRejectsForeignChunks(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) { testRejectsForeignChunks(t, direct) })
	}
}

func testRejectsForeignChunks(t *testing.T, direct bool) {
	cfg := testConfig()
	cfg.Streams = 1
	cfg.Timeout = 2 * time.Second
	b := startNode(t, cfg)
	members := []string{startSink(t), b.addr}
	for i, tc := range []struct {
		name   string
		mutate func(h *ringv1.TransferRequest)
		repeat bool
	}{
		{name: "valid"},
		{name: "other collective", mutate: func(h *ringv1.TransferRequest) { h.Sequence = 3 }},
		{name: "other step", mutate: func(h *ringv1.TransferRequest) { h.Step = 8 }},
		{name: "other generation", mutate: func(h *ringv1.TransferRequest) { h.Generation += 100 }},
		{name: "other job", mutate: func(h *ringv1.TransferRequest) { h.Job = "intruder" }},
		{name: "other channel", mutate: func(h *ringv1.TransferRequest) { h.Channel = uint32(Bulk) }},
		{name: "other sender", mutate: func(h *ringv1.TransferRequest) { h.FromRank = 1 }},
		{name: "other length", mutate: func(h *ringv1.TransferRequest) { h.Length = 9 }},
		{name: "bfloat16", mutate: func(h *ringv1.TransferRequest) { h.Encoding = ringv1.Encoding_ENCODING_BFLOAT16 }},
		{name: "other position", mutate: func(h *ringv1.TransferRequest) { h.Piece = 1 }},
		{name: "repeated", repeat: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := uint64(i + 1)
			ring, err := b.svc.NewRing(context.Background(), gen, members, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer ring.Close()
			hdr := &ringv1.TransferRequest{Job: cfg.Job, Generation: gen, RingSize: 2}
			send, err := fakeLane(t, b.addr, hdr, direct)
			if err != nil {
				t.Fatalf("open lane: %v", err)
			}
			checkFakeCollective(t, ring, send, hdr, tc.mutate, tc.repeat)
		})
	}
}

func checkFakeCollective(t *testing.T, ring *Ring, send func(*outChunk) error,
	hdr *ringv1.TransferRequest, mutate func(*ringv1.TransferRequest), repeat bool) {
	t.Helper()
	mine := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	theirs := []float32{10, 20, 30, 40}
	final := []float32{-1, -2, -3, -4}
	buf := append([]float32(nil), mine...)
	done := make(chan error, 1)
	go func() { done <- ring.AllReduce(context.Background(), 5, buf) }()
	chunk := proto.Clone(hdr).(*ringv1.TransferRequest)
	chunk.Sequence, chunk.Step, chunk.Length, chunk.Encoding = 1, 5, 8, ringv1.Encoding_ENCODING_FLOAT32
	if mutate != nil {
		mutate(chunk)
	}
	_ = send(&outChunk{hdr: chunk, src: theirs})
	if repeat {
		_ = send(&outChunk{hdr: chunk, src: theirs})
	}
	if mutate == nil && !repeat {
		chunk.RingStep = 1
		_ = send(&outChunk{hdr: chunk, src: final})
	}
	err := <-done
	switch {
	case mutate == nil && !repeat:
		want := []float32{11, 22, 33, 44, -1, -2, -3, -4}
		if err != nil || !sameBitsF32(buf, want) {
			t.Fatalf("valid chunks: %v, buffer %v, want %v", err, buf, want)
		}
	case !errors.Is(err, ErrRejected):
		t.Fatalf("collective error %v, want ErrRejected", err)
	case !repeat && !sameBitsF32(buf, mine):
		t.Fatalf("a rejected chunk was summed: buffer %v, want %v", buf, mine)
	default:
		t.Logf("rejected: %v", err)
	}
}

// TestRejectsForeignLanes: a lane opened for another job, by a member that
// is not the predecessor, or for an older generation is refused with the
// matching gRPC code.
func TestRejectsForeignLanes(t *testing.T) {
	cfg := testConfig()
	cfg.Streams = 1
	b := startNode(t, cfg)
	members := []string{startSink(t), b.addr}
	ring, err := b.svc.NewRing(context.Background(), 5, members, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	for _, tc := range []struct {
		name string
		hdr  *ringv1.TransferRequest
		code codes.Code
	}{
		{"other job", &ringv1.TransferRequest{Job: "x", Generation: 5, RingSize: 2}, codes.InvalidArgument},
		{"not the predecessor", &ringv1.TransferRequest{Job: cfg.Job, Generation: 5, RingSize: 2, FromRank: 1}, codes.InvalidArgument},
		{"other ring size", &ringv1.TransferRequest{Job: cfg.Job, Generation: 5, RingSize: 3}, codes.InvalidArgument},
		{"lane out of range", &ringv1.TransferRequest{Job: cfg.Job, Generation: 5, RingSize: 2, Lane: 1}, codes.InvalidArgument},
		{"stale generation", &ringv1.TransferRequest{Job: cfg.Job, Generation: 4, RingSize: 2}, codes.FailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fakeLane(t, b.addr, tc.hdr, false)
			if status.Code(err) != tc.code {
				t.Fatalf("open lane: %v, want code %v", err, tc.code)
			}
		})
	}
	if _, err := b.svc.NewRing(context.Background(), 4, members, 1); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("joining an older generation: %v, want ErrStaleGeneration", err)
	}
}

func newRingClient(conn *grpc.ClientConn) ringv1.RingServiceClient {
	return ringv1.NewRingServiceClient(conn)
}
