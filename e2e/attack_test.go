package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
	"github.com/whorl-ml/whorl/model"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// tlsArgs are the --tls-* flags of files.
func tlsArgs(f tlsfiles.Files) []string {
	return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
}

// TestAttacksUnderMutualTLS runs three coordinator and two worker processes
// of the real binary with per-identity certificates, and while the job
// pretrains tries what issue 31 found open: each attempt is refused with the
// error the test expects, and the job's pretrained weights equal those of
// the undisturbed single-process loop.
func TestAttacksUnderMutualTLS(t *testing.T) {
	dir := tinyDataDir(t, 3, 12)
	p := newProcs(t)
	ca := tlstest.NewCA(t, "whorl e2e CA")
	certs := t.TempDir()
	raftAddrs, grpcs := freeAddrs(t, 3), freeAddrs(t, 3)
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("c%d=%s", i, raftAddrs[i]))
	}
	for i := range 3 {
		id := fmt.Sprintf("c%d", i)
		if err := os.MkdirAll(filepath.Join(p.dir, "out-"+id), 0o755); err != nil {
			t.Fatal(err)
		}
		args := []string{"coordinator", "--id", id, "--raft-addr", raftAddrs[i], "--grpc-addr", grpcs[i],
			"--data-dir", filepath.Join(p.dir, id), "--peers", strings.Join(peers, ","), "--out", filepath.Join(p.dir, "out-"+id)}
		p.start(id, append(args, tlsArgs(ca.Files(t, certs, identity.Coordinator, id))...)...)
	}
	for _, id := range []string{"w0", "w1"} {
		args := []string{"worker", "--id", id, "--coordinator", strings.Join(grpcs, ","), "--listen", "127.0.0.1:0",
			"--data", dir, "--threads", "1", "--assignment-wait", "2s"}
		p.start(id, append(args, tlsArgs(ca.Files(t, certs, identity.Worker, id))...)...)
	}
	admin := ca.Configs(t, identity.Client, "admin")
	cl, err := dialClient(grpcs, admin.Client)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitUntil(t, time.Minute, "both workers registered", func() bool { return len(status(t, cl).GetWorkers()) == 2 })
	c := tinyJob(t, dir, 3)
	c.Pretrain.Augmentation.CropPad, c.Pretrain.LR = 0, 0.01
	submit(t, cl, c)
	waitUntil(t, time.Minute, "pretraining under way", func() bool {
		s := status(t, cl)
		return s.GetPhase() == pb.Phase_PHASE_PRETRAINING && stepsDone(s) >= 1
	})

	tryAttacks(t, ca, grpcs, raftAddrs, status(t, cl))

	waitUntil(t, 3*time.Minute, "pretraining done", pastPretraining(t, cl))
	st := status(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, data, err := cl.FetchCheckpoint(ctx, st.GetLatestCheckpoint().GetDigest())
	if err != nil {
		t.Fatal(err)
	}
	ck, err := model.DecodeCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := localPretrain(t, c)
	if d := maxDiff(want.Params(), ck.Net.Params()); d > equivalenceTolerance {
		t.Errorf("the attacked job's weights differ from the undisturbed loop's by %g (tolerance %g)", d, equivalenceTolerance)
	} else {
		t.Logf("pretrained weights after the attacks: within %.3g of the undisturbed loop's", d)
	}
}

// tryAttacks makes each attempt and checks its refusal.
func tryAttacks(t *testing.T, ca *tlstest.CA, grpcs, raftAddrs []string, st *pb.JobStatusResponse) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := func(role identity.Role, name string) *grpc.ClientConn {
		c, err := grpc.NewClient(st.GetLeaderAddr(), grpc.WithTransportCredentials(credentials.NewTLS(ca.Configs(t, role, name).Client)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	w0, admin := pb.NewCoordinatorServiceClient(conn(identity.Worker, "w0")), pb.NewCoordinatorServiceClient(conn(identity.Client, "admin"))
	w0peer := pb.NewPeerServiceClient(conn(identity.Worker, "w0"))
	denied := []struct {
		name, errHas string
		call         func() error
	}{
		{"w0's certificate registers as w1 (diverting w1's predecessor's gradients)", `may act only for worker "w0", not "w1"`, func() error {
			_, err := w0.RegisterWorker(ctx, &pb.RegisterWorkerRequest{WorkerId: "w1", RingAddr: "127.0.0.1:9"})
			return err
		}},
		{"a client's certificate registers a ghost worker", "allows worker", func() error {
			_, err := admin.RegisterWorker(ctx, &pb.RegisterWorkerRequest{WorkerId: "ghost", RingAddr: "127.0.0.1:9"})
			return err
		}},
		{"a worker's certificate announces a leader address", "allows coordinator", func() error {
			_, err := w0peer.Announce(ctx, &pb.AnnounceRequest{Id: "c0", GrpcAddr: "127.0.0.1:9"})
			return err
		}},
		{"a worker's certificate submits a job", "allows client", func() error {
			_, err := w0.SubmitJob(ctx, &pb.SubmitJobRequest{})
			return err
		}},
		{"a worker's certificate cancels the job", "allows client", func() error {
			_, err := w0.CancelJob(ctx, &pb.CancelJobRequest{})
			return err
		}},
	}
	for _, a := range denied {
		err := a.call()
		if grpcstatus.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), a.errHas) {
			t.Errorf("%s: %v, want PermissionDenied naming %q", a.name, err, a.errHas)
			continue
		}
		t.Logf("%s: refused: %s", a.name, grpcstatus.Convert(err).Message())
	}
	for _, who := range []identity.Role{identity.Worker, identity.Client} {
		if err := raftTimeoutNow(ca.Configs(t, who, "x").Peers(nil), raftAddrs[1]); err == nil {
			t.Errorf("raft TimeoutNow with a %s's certificate accepted", who)
		} else {
			t.Logf("raft TimeoutNow with a %s's certificate: refused: %v", who, err)
		}
	}
	impersonateRank(t, ca, st)
}

// raftTimeoutNow sends raft's TimeoutNow (which makes a follower start an
// election at once) to addr over TLS with cfg.
func raftTimeoutNow(cfg *tls.Config, addr string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tr := raft.NewNetworkTransport(&tlsStream{Listener: ln, cfg: cfg}, 1, 3*time.Second, io.Discard)
	defer tr.Close()
	var resp raft.TimeoutNowResponse
	return tr.TimeoutNow("c1", raft.ServerAddress(addr),
		&raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("x"), Addr: []byte(ln.Addr().String())}}, &resp)
}

// tlsStream is a raft StreamLayer that dials with TLS.
type tlsStream struct {
	net.Listener
	cfg *tls.Config
}

func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), s.cfg)
}

// impersonateRank opens a ring lane to rank 1 of the current generation as
// rank 0 with a valid worker certificate of another id (w9).
func impersonateRank(t *testing.T, ca *tlstest.CA, st *pb.JobStatusResponse) {
	t.Helper()
	var target string
	for _, w := range st.GetWorkers() {
		if w.GetRank() == 1 {
			target = w.GetRingAddr()
		}
	}
	if target == "" {
		t.Logf("no rank 1 in generation %d: lane impersonation not tried", st.GetGeneration())
		return
	}
	c := ca.Configs(t, identity.Worker, "w9")
	cfg := cluster.DefaultConfig()
	cfg.Job, cfg.TLS, cfg.DialTLS, cfg.Timeout = "whorl-pretraining", c.Peers(nil), c.Peers(nil, identity.Worker), 3*time.Second
	svc, err := cluster.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(svc.ServerOptions()...)
	svc.Register(gs)
	go func() { _ = gs.Serve(svc.Listener(ln)) }()
	defer gs.Stop()
	r, err := svc.NewRing(context.Background(), st.GetGeneration(), []string{ln.Addr().String(), target}, 0)
	if err == nil {
		_ = r.Close()
		t.Error("w9 opened a lane to rank 1 as rank 0")
		return
	}
	if !strings.Contains(err.Error(), "may not send as rank 0") {
		t.Errorf("lane as another worker's rank: %v, want the rank check's refusal", err)
		return
	}
	t.Logf("w9's lane as rank 0: refused: %v", err)
}
