package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
)

// LocalCluster is a coordinator group running in this process on loopback
// TCP (real raft, real gRPC), for tests and single-machine runs: the e2e
// suites and `whorl run` start one with StartLocal, kill and restart nodes
// with Stop and Restart, and give Addrs to workers and clients.
type LocalCluster struct {
	base  Config
	mu    sync.Mutex
	nodes []*localNode
}

// localNode is one member: its config (addresses fixed at start) and, while
// it runs, the node and its stop function.
type localNode struct {
	cfg    Config
	node   *Node
	cancel context.CancelFunc
	done   chan error
}

// LocalOption changes how StartLocal starts a group.
type LocalOption func(*localOptions)

type localOptions struct {
	portsFile string
	tlsFor    func(id string) TLSFiles
}

// NodeTLS gives each member its own TLS files (its identity is
// coordinator/<id>: c0, c1, ...), replacing base's TLS.
func NodeTLS(files func(id string) TLSFiles) LocalOption {
	return func(o *localOptions) { o.tlsFor = files }
}

// RememberPorts keeps the members' loopback ports in path (JSON) and reuses
// them when the file exists, so a group restarted on the same data dirs
// finds raft on the addresses its log remembers (`whorl run` resuming an
// --out). Without it every start takes fresh ports.
func RememberPorts(path string) LocalOption {
	return func(o *localOptions) { o.portsFile = path }
}

// StartLocal starts size coordinators (1, 3 or 5) on 127.0.0.1 with free
// ports and data dirs dir/c0, dir/c1, ...; base supplies everything else
// (Phases, timings, Logger; its ID, addresses, DataDir and Peers are set
// here). It returns once every node runs; call Close to stop them. On any
// failure everything it opened or started is closed and stopped again.
func StartLocal(dir string, size int, base Config, opts ...LocalOption) (*LocalCluster, error) {
	if size < 1 {
		return nil, fmt.Errorf("%w: local cluster size %d, want >= 1", ErrConfig, size)
	}
	var o localOptions
	for _, opt := range opts {
		opt(&o)
	}
	raftLns, grpcLns, err := listenLocal(o.portsFile, size)
	if err != nil {
		return nil, err
	}
	lc := &LocalCluster{base: base}
	peers := make([]Peer, size)
	for i := range size {
		peers[i] = Peer{ID: fmt.Sprintf("c%d", i), RaftAddr: raftLns[i].Addr().String()}
	}
	for i := range size {
		cfg := base
		cfg.ID, cfg.DataDir = peers[i].ID, filepath.Join(dir, peers[i].ID)
		cfg.RaftAddr, cfg.GRPCAddr = raftLns[i].Addr().String(), grpcLns[i].Addr().String()
		cfg.Peers, cfg.PeersDNS = nil, ""
		if o.tlsFor != nil {
			cfg.TLS = o.tlsFor(cfg.ID)
		}
		if size > 1 {
			cfg.Peers = peers
		}
		lc.nodes = append(lc.nodes, &localNode{cfg: cfg})
	}
	for i := range size {
		if err := lc.start(i, raftLns[i], grpcLns[i]); err != nil {
			closeAll(raftLns[i+1:], grpcLns[i+1:])
			return nil, errors.Join(err, lc.Close())
		}
	}
	return lc, nil
}

// closeAll closes listeners (their errors do not matter: they never
// served).
func closeAll(lists ...[]net.Listener) {
	for _, l := range lists {
		for _, ln := range l {
			ln.Close()
		}
	}
}

// start runs node i on the listeners (nil: listen again on its addresses,
// retrying briefly while the old socket lingers).
func (lc *LocalCluster) start(i int, raftLn, grpcLn net.Listener) error {
	ln := lc.nodes[i]
	cfg := ln.cfg
	var err error
	for attempt := 0; raftLn == nil && attempt < 50; attempt++ {
		if raftLn, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if raftLn == nil {
		return fmt.Errorf("restart %s: listen on %s: %w", cfg.ID, cfg.RaftAddr, err)
	}
	if grpcLn == nil {
		if grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			raftLn.Close()
			return fmt.Errorf("restart %s: listen on %s: %w", cfg.ID, cfg.GRPCAddr, err)
		}
	}
	cfg.RaftListener, cfg.GRPCListener = raftLn, grpcLn
	n, err := New(cfg)
	if err != nil {
		raftLn.Close()
		grpcLn.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		return fmt.Errorf("start %s: %w", cfg.ID, err)
	}
	lc.mu.Lock()
	ln.node, ln.cancel, ln.done = n, cancel, done
	lc.mu.Unlock()
	return nil
}

// Size is the number of members.
func (lc *LocalCluster) Size() int { return len(lc.nodes) }

// Node returns member i (nil while it is stopped).
func (lc *LocalCluster) Node(i int) *Node {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.nodes[i].cancel == nil {
		return nil
	}
	return lc.nodes[i].node
}

// Addrs returns the gRPC addresses of every member (running or not: a
// client skips the dead ones).
func (lc *LocalCluster) Addrs() []string {
	out := make([]string, len(lc.nodes))
	for i, n := range lc.nodes {
		out[i] = n.cfg.GRPCAddr
	}
	return out
}

// Client returns a client of every member (default configuration, logging
// to log, slog.Default when nil; mutual TLS with tlsCfg, plaintext when
// nil).
func (lc *LocalCluster) Client(log *slog.Logger, tlsCfg *tls.Config) (*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.Logger, cfg.TLS = lc.Addrs(), log, tlsCfg
	return client.New(cfg)
}

// Leader waits up to timeout for a running member to lead and returns its
// index.
func (lc *LocalCluster) Leader(ctx context.Context, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		for i := range lc.nodes {
			if n := lc.Node(i); n != nil && n.IsLeader() {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("wait for a leader: %w", client.ErrNoLeader)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop shuts member i down (like a crash that keeps its data dir; raft
// state is durable on every commit) and waits for it.
func (lc *LocalCluster) Stop(i int) error {
	lc.mu.Lock()
	ln := lc.nodes[i]
	cancel, done := ln.cancel, ln.done
	ln.cancel = nil
	lc.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	return <-done
}

// Restart starts a stopped member again on its addresses and data dir.
func (lc *LocalCluster) Restart(i int) error {
	lc.mu.Lock()
	running := lc.nodes[i].cancel != nil
	lc.mu.Unlock()
	if running {
		return nil
	}
	err := lc.start(i, nil, nil)
	return err
}

// Close stops every member.
func (lc *LocalCluster) Close() error {
	var errs []error
	for i := range lc.nodes {
		errs = append(errs, lc.Stop(i))
	}
	return errors.Join(errs...)
}
