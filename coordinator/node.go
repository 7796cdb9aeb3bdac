package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/whorl-ml/whorl/coordinator/blobstore"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/rpcguard"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Node is one coordinator: raft, the gRPC server (CoordinatorService,
// PeerService, grpc.health.v1), the metrics server, and while it leads the
// lease timer and the job driver. Create it with New and run it with Run.
type Node struct {
	cfg    Config
	log    *slog.Logger
	fsm    *FSM
	blobs  *blobstore.Store
	peers  []Peer
	raftLn net.Listener
	grpcLn net.Listener

	tls tlsfiles.Configs // all nil when TLS is off

	notify  chan bool
	rp      *raftParts
	ready   chan struct{}
	grpc    *grpc.Server
	health  *health.Server
	metrics *nodeMetrics
	leases  *leaseTable
	pool    *client.Conns // to the other coordinators
	prep    prepCache
	orders  orderCache

	// stop is closed when Run begins to shut down. The Node keeps no
	// context: Run's ctx reaches its loops as an argument, request
	// handlers use their request's ctx, and work that must outlive a
	// request (blob copies beyond the quorum) runs under detach, which
	// stop cancels; long polls return on it.
	stop chan struct{}
	// bg owns the goroutines started with spawn; Run waits for them after
	// the gRPC server stopped and before raft closes. bgMu orders spawn
	// against the close of stop, so no goroutine starts once Run waits.
	bgMu sync.Mutex
	bg   sync.WaitGroup
	// barrier is raft's Barrier (a fault test replaces it before Run).
	barrier func(timeout time.Duration) error
	// leaderReady is true while this node leads and has caught up.
	leaderReady atomic.Bool
	// storeErr is the last failure of this node's disk to take a
	// checkpoint ("" after a success); JobStatus reports it.
	storeErr atomicString

	closeOnce sync.Once
}

// New validates cfg and opens the raft and gRPC listeners (so Addr and
// RaftAddr are known before Run, also with port 0). Raft starts in Run.
// Call Run, or Close when Run is not called.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.ID), notify: make(chan bool, 16),
		ready: make(chan struct{}), stop: make(chan struct{})}
	var err error
	if n.tls, err = tlsfiles.Load(cfg.TLS); err != nil {
		return nil, fmt.Errorf("coordinator %s: %w: %w", cfg.ID, ErrConfig, err)
	}
	if err := n.checkSelf(); err != nil {
		return nil, err
	}
	n.warnPlaintext()
	if n.raftLn, err = listen(cfg.RaftListener, cfg.RaftAddr, "raft"); err != nil {
		return nil, err
	}
	if n.grpcLn, err = listen(cfg.GRPCListener, cfg.GRPCAddr, "gRPC"); err != nil {
		n.raftLn.Close()
		return nil, err
	}
	if n.peers, err = resolvePeers(cfg, n.raftAdvertise()); err != nil {
		n.Close()
		return nil, err
	}
	if n.blobs, err = blobstore.New(filepath.Join(cfg.DataDir, "blobs")); err != nil {
		n.Close()
		return nil, err
	}
	n.fsm = NewFSM()
	n.leases = newLeaseTable()
	n.pool = client.NewConns(n.tls.Client)
	n.metrics = newNodeMetrics(n)
	n.barrier = func(t time.Duration) error { return n.rp.raft.Barrier(t).Error() }
	return n, nil
}

// listen returns ln or a new TCP listener on addr.
func listen(ln net.Listener, addr, what string) (net.Listener, error) {
	if ln != nil {
		return ln, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s on %s: %w", what, addr, err)
	}
	return l, nil
}

// raftAdvertise is the configured raft address, or the listener's when the
// configuration asked for port 0.
func (n *Node) raftAdvertise() string {
	if n.cfg.RaftListener == nil {
		if _, port, err := net.SplitHostPort(n.cfg.RaftAddr); err == nil && port != "0" {
			return n.cfg.RaftAddr
		}
	}
	return n.raftLn.Addr().String()
}

// ID is the node's raft server id.
func (n *Node) ID() string { return n.cfg.ID }

// Addr is the gRPC address the node serves on.
func (n *Node) Addr() string { return n.grpcAdvertise() }

// RaftAddr is the raft address the node advertises.
func (n *Node) RaftAddr() string { return n.raftAdvertise() }

// grpcAdvertise is GRPCAddr unless it asked for port 0.
func (n *Node) grpcAdvertise() string {
	if n.cfg.GRPCListener == nil {
		if _, port, err := net.SplitHostPort(n.cfg.GRPCAddr); err == nil && port != "0" {
			return n.cfg.GRPCAddr
		}
	}
	return n.grpcLn.Addr().String()
}

// Ready is closed once raft runs and the gRPC server serves.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// IsLeader reports whether this node is the raft leader.
func (n *Node) IsLeader() bool { return n.rp != nil && n.rp.raft.State() == raft.Leader }

// State returns a copy of the replicated state as applied on this node.
func (n *Node) State() *State {
	var c *State
	n.fsm.View(func(s *State) { c = s.Clone() })
	return c
}

// Close releases the listeners of a node whose Run was not called (Run
// releases everything itself).
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		err = errors.Join(n.raftLn.Close(), n.grpcLn.Close())
	})
	return err
}

// Run starts raft (bootstrapping when due), serves gRPC and metrics and
// runs the leader's duties while leading, until ctx is done; then it closes
// stop (long polls return, detached work is cancelled) and shuts down in
// reverse order (gRPC, leader goroutines, background goroutines, raft,
// stores).
func (n *Node) Run(ctx context.Context) error {
	defer n.Close()
	rp, err := openRaft(n.cfg, n.peers, n.fsm, n.raftLn, n.tls.Peers(n.allowRaftPeer, identity.Coordinator), n.notify)
	if err != nil {
		return err
	}
	n.rp = rp
	n.grpc = n.newGRPCServer()
	n.log.Info("coordinator started", "raft", n.RaftAddr(), "grpc", n.Addr(), "peers", len(n.peers))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.serveGRPC() })
	g.Go(func() error { return n.serveMetrics(gctx) })
	g.Go(func() error { return n.leaderLoop(gctx) })
	g.Go(func() error { return n.followerLoop(gctx) })
	close(n.ready)
	<-gctx.Done()
	n.closeStop()
	n.stopGRPC()
	err = g.Wait()
	n.bg.Wait()
	n.pool.Close()
	if cerr := rp.close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("shut down raft: %w", cerr))
	}
	n.log.Info("coordinator stopped")
	return err
}

// spawn runs f in a goroutine owned by the node: Run waits for it before
// closing raft, so f must end soon after stop closes. Once Run began to
// shut down it starts nothing and returns client.ErrShutdown.
func (n *Node) spawn(f func()) error {
	n.bgMu.Lock()
	defer n.bgMu.Unlock()
	select {
	case <-n.stop:
		return client.ErrShutdown
	default:
	}
	n.bg.Go(f)
	return nil
}

// closeStop closes stop: long polls return, detached work is cancelled and
// spawn refuses new goroutines.
func (n *Node) closeStop() {
	n.bgMu.Lock()
	defer n.bgMu.Unlock()
	close(n.stop)
}

// detach returns a context for work that must outlive the request ctx: it
// keeps ctx's values but not its cancellation, and ends after timeout or
// once the node stops (a watcher started with spawn cancels it). Call
// cancel when the work is done.
func (n *Node) detach(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	err := n.spawn(func() {
		select {
		case <-n.stop:
			cancel()
		case <-dctx.Done():
		}
	})
	if err != nil {
		cancel() // stopping already
	}
	return dctx, cancel
}

// newGRPCServer registers the services behind the panic-recovery
// interceptors and, with mTLS, the authorization policy (authz.go).
func (n *Node) newGRPCServer() *grpc.Server {
	guard := rpcguard.New(n.log, "coordinator")
	unary := []grpc.UnaryServerInterceptor{guard.Unary}
	stream := []grpc.StreamServerInterceptor{guard.Stream}
	var opts []grpc.ServerOption
	if n.tls.Enabled() {
		p := n.policy()
		opts = append(opts, grpc.Creds(credentials.NewTLS(n.tls.Server)))
		unary, stream = append(unary, p.UnaryInterceptor()), append(stream, p.StreamInterceptor())
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...),
		grpc.MaxConcurrentStreams(uint32(n.cfg.MaxStreams)))
	s := grpc.NewServer(opts...)
	pb.RegisterCoordinatorServiceServer(s, &coordinatorServer{n: n})
	pb.RegisterPeerServiceServer(s, &peerServer{n: n})
	n.health = health.NewServer()
	n.setServing(false)
	n.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, n.health)
	return s
}

// LivenessService is a grpc.health.v1 service name that is SERVING while
// the node runs, whether or not a leader exists (for liveness probes; the
// default service "" and the API services report readiness: SERVING only
// while a leader is known).
const LivenessService = "whorl.coordinator.v1.Liveness"

// setServing sets the readiness of every service.
func (n *Node) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, svc := range []string{"", pb.CoordinatorService_ServiceDesc.ServiceName, pb.PeerService_ServiceDesc.ServiceName} {
		n.health.SetServingStatus(svc, st)
	}
}

func (n *Node) serveGRPC() error {
	if err := n.grpc.Serve(n.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve gRPC on %s: %w", n.Addr(), err)
	}
	return nil
}

// stopGRPC stops the gRPC server gracefully, bounded by 5 s.
func (n *Node) stopGRPC() {
	n.health.Shutdown()
	done := make(chan struct{})
	go func() { n.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		n.grpc.Stop()
		<-done
	}
}

// serveMetrics serves /metrics on MetricsAddr until ctx is done.
func (n *Node) serveMetrics(ctx context.Context) error {
	if n.cfg.MetricsAddr == "" {
		return nil
	}
	srv := &http.Server{Addr: n.cfg.MetricsAddr, Handler: n.metrics.handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics on %s: %w", n.cfg.MetricsAddr, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	}
}
