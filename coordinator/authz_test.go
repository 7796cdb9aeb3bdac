package coordinator

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// asRole returns gRPC connections to addr holding role/name's certificate.
func asRole(t *testing.T, ca *tlstest.CA, addr string, role identity.Role, name string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(ca.Configs(t, role, name).Client)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestAuthorization: on a three-coordinator cluster with per-role
// certificates from one CA, each call a role may not make is refused with
// PermissionDenied naming the identity, whichever coordinator it reaches;
// the allowed calls work; every refusal is counted.
func TestAuthorization(t *testing.T) {
	ca := tlstest.NewCA(t, "whorl test CA")
	c := newCluster(t, 3, nil, NodeTLS(func(id string) TLSFiles { return ca.Files(t, t.TempDir(), identity.Coordinator, id) }))
	leader := c.waitLeader(15 * time.Second)
	addr := c.node(leader).Addr()
	w0 := pb.NewCoordinatorServiceClient(asRole(t, ca, addr, identity.Worker, "w0"))
	alice := pb.NewCoordinatorServiceClient(asRole(t, ca, addr, identity.Client, "alice"))
	w0peer := pb.NewPeerServiceClient(asRole(t, ca, addr, identity.Worker, "w0"))
	alicePeer := pb.NewPeerServiceClient(asRole(t, ca, addr, identity.Client, "alice"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := w0.RegisterWorker(ctx, &pb.RegisterWorkerRequest{WorkerId: "w0", RingAddr: "127.0.0.1:1"}); err != nil {
		t.Fatalf("w0 registering itself: %v", err)
	}
	if _, err := alice.JobStatus(ctx, &pb.JobStatusRequest{}); err != nil {
		t.Fatalf("a client reading the status: %v", err)
	}
	attacks := []struct {
		name   string
		call   func() error
		errHas string
	}{
		{"a worker registers as another", func() error {
			_, err := w0.RegisterWorker(ctx, &pb.RegisterWorkerRequest{WorkerId: "w1", RingAddr: "127.0.0.1:2"})
			return err
		}, `may act only for worker "w0", not "w1"`},
		{"a worker heartbeats for another", func() error {
			_, err := w0.Heartbeat(ctx, &pb.HeartbeatRequest{WorkerId: "w1"})
			return err
		}, `not "w1"`},
		{"a worker submits a job", func() error {
			_, err := w0.SubmitJob(ctx, &pb.SubmitJobRequest{})
			return err
		}, "spiffe://whorl/worker/w0 (role worker) may not call /whorl.coordinator.v1.CoordinatorService/SubmitJob"},
		{"a client registers a ghost worker", func() error {
			_, err := alice.RegisterWorker(ctx, &pb.RegisterWorkerRequest{WorkerId: "ghost", RingAddr: "127.0.0.1:3"})
			return err
		}, "allows worker"},
		{"a worker cancels the job", func() error {
			_, err := w0.CancelJob(ctx, &pb.CancelJobRequest{})
			return err
		}, "allows client"},
		{"a client reports progress", func() error {
			_, err := alice.ReportProgress(ctx, &pb.ReportProgressRequest{WorkerId: "w0"})
			return err
		}, "allows worker"},
		{"a worker announces itself leader", func() error {
			_, err := w0peer.Announce(ctx, &pb.AnnounceRequest{Id: "c0", GrpcAddr: "127.0.0.1:4"})
			return err
		}, "allows coordinator"},
		{"a client streams a blob", func() error {
			s, err := alicePeer.PutBlob(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(&pb.PutBlobRequest{})
			_, err = s.CloseAndRecv()
			return err
		}, "allows coordinator"},
		{"a worker commits a checkpoint as another", func() error {
			s, err := w0.CommitCheckpoint(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(&pb.CommitCheckpointRequest{Msg: &pb.CommitCheckpointRequest_Header{Header: &pb.CheckpointHeader{WorkerId: "w1"}}})
			_, err = s.CloseAndRecv()
			return err
		}, `not "w1"`},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			err := a.call()
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), a.errHas) {
				t.Fatalf("got %v, want PermissionDenied naming %q", err, a.errHas)
			}
			t.Logf("refused: %s", status.Convert(err).Message())
		})
	}
	var counted float64
	for i := range c.size() {
		counted += sumCounter(t, c.node(i).metrics.denied)
	}
	if counted != float64(len(attacks)) {
		t.Errorf("whorl_coordinator_denied_total sums to %v, want %d", counted, len(attacks))
	}
}

// sumCounter is the sum of a counter vector's series.
func sumCounter(t *testing.T, cv *prometheus.CounterVec) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cv)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestRaftRefusesNonPeers: a TimeoutNow (which makes a follower start an
// election at once) sent with a worker's certificate, or with a
// coordinator certificate of an id outside the peer list, is refused and no
// term moves; the same request with a peer's certificate does start an
// election (so the check can fail).
func TestRaftRefusesNonPeers(t *testing.T) {
	ca := tlstest.NewCA(t, "whorl test CA")
	c := newCluster(t, 3, nil, NodeTLS(func(id string) TLSFiles { return ca.Files(t, t.TempDir(), identity.Coordinator, id) }))
	leader := c.waitLeader(15 * time.Second)
	follower := (leader + 1) % 3
	target := c.node(follower)
	term := func() uint64 {
		v, _ := strconv.ParseUint(target.rp.raft.Stats()["term"], 10, 64)
		return v
	}
	timeoutNow := func(role identity.Role, name string) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := ca.Configs(t, role, name).Peers(nil)
		tr := raft.NewNetworkTransport(newStreamLayer(ln, ln.Addr(), cfg), 1, 2*time.Second, io.Discard)
		defer tr.Close()
		var resp raft.TimeoutNowResponse
		return tr.TimeoutNow(raft.ServerID(target.cfg.ID), raft.ServerAddress(target.RaftAddr()),
			&raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(name), Addr: []byte(ln.Addr().String())}}, &resp)
	}
	before := term()
	for _, who := range []struct {
		role identity.Role
		name string
	}{{identity.Worker, "w0"}, {identity.Client, "alice"}, {identity.Coordinator, "c9"}} {
		if err := timeoutNow(who.role, who.name); err == nil {
			t.Errorf("%s/%s: TimeoutNow accepted", who.role, who.name)
		} else {
			t.Logf("%s/%s refused: %v", who.role, who.name, err)
		}
	}
	time.Sleep(time.Second)
	if got := term(); got != before {
		t.Fatalf("term moved from %d to %d after refused TimeoutNow requests", before, got)
	}
	if got := sumCounter(t, target.metrics.denied); got < 1 {
		t.Errorf("refused raft connections not counted (%v)", got)
	}
	peer := c.node(leader).cfg.ID
	if err := timeoutNow(identity.Coordinator, peer); err != nil {
		t.Fatalf("TimeoutNow with peer %s's certificate: %v", peer, err)
	}
	eventually(t, 5*time.Second, "the term to move after a peer's TimeoutNow", func() bool { return term() > before })
}

// TestPutBlobBounded: a PutBlob that streams more than it declared is
// refused as soon as the bytes pass the declared size (the declared size
// itself is bounded by MaxCheckpointBytes), and leaves no file behind.
func TestPutBlobBounded(t *testing.T) {
	n := startNode(t, func(n *Node) { n.cfg.MaxCheckpointBytes = 4 << 20 })
	conn, err := grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer := pb.NewPeerServiceClient(conn)
	digest := strings.Repeat("ab", 32)
	chunk := make([]byte, 256<<10)
	for _, tc := range []struct {
		name     string
		declared uint64
		send     int // chunks of 256 KiB
		errHas   string
	}{
		{"more than declared", 1 << 20, 48, "more than the 1048576 bytes declared"},
		{"declared above the maximum", 64 << 20, 1, "not in 0..4194304"},
		{"declared zero", 0, 1, "more than the 0 bytes declared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := peer.PutBlob(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(&pb.PutBlobRequest{Msg: &pb.PutBlobRequest_Header{Header: &pb.BlobHeader{Digest: digest, Size: tc.declared}}}); err != nil {
				t.Fatal(err)
			}
			sent := 0
			for range tc.send {
				if s.Send(&pb.PutBlobRequest{Msg: &pb.PutBlobRequest_Chunk{Chunk: chunk}}) != nil {
					break // the server refused and closed the stream
				}
				sent++
			}
			_, err = s.CloseAndRecv()
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("PutBlob: %v, want InvalidArgument naming %q", err, tc.errHas)
			}
			entries, _ := os.ReadDir(filepath.Join(n.cfg.DataDir, "blobs"))
			for _, e := range entries {
				t.Errorf("file left in the blob store: %s", e.Name())
			}
			t.Logf("refused after %d of %d chunks sent: %s", sent, tc.send, status.Convert(err).Message())
		})
	}
}

// TestMaxWorkers: a new worker id beyond MaxWorkers is refused with
// ResourceExhausted naming the bound; a registered worker re-registers,
// and once one leaves a new one fits; ids and ring addresses are bounded.
func TestMaxWorkers(t *testing.T) {
	n := startNode(t, func(n *Node) { n.cfg.MaxWorkers = 2 })
	cl, _ := dialTest([]string{n.Addr()})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, id := range []string{"w1", "w2", "w1"} {
		if _, err := cl.Register(ctx, id, "127.0.0.1:1"); err != nil {
			t.Fatalf("register %s: %v", id, err)
		}
	}
	_, err := cl.Register(ctx, "w3", "127.0.0.1:1")
	if !errors.Is(err, client.ErrTooManyWorkers) || !strings.Contains(err.Error(), "MaxWorkers") {
		t.Fatalf("third worker: %v, want ErrTooManyWorkers naming MaxWorkers", err)
	}
	t.Logf("refused: %v", err)
	if _, err := cl.Leave(ctx, "w2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Register(ctx, "w3", "127.0.0.1:1"); err != nil {
		t.Fatalf("w3 after w2 left: %v", err)
	}
	for _, bad := range []struct{ id, addr string }{{strings.Repeat("w", 300), "127.0.0.1:1"}, {"w4", "no port"}} {
		if _, err := cl.Register(ctx, bad.id, bad.addr); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("register %.20q at %q: %v, want ErrBadRequest", bad.id, bad.addr, err)
		}
	}
}
