package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftParts are the pieces of a raft node that must be closed on shutdown.
type raftParts struct {
	raft      *raft.Raft
	store     *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	snaps     *raft.FileSnapshotStore
}

// openRaft opens the durable stores under cfg.DataDir, starts raft on ln and
// bootstraps the cluster when this node is the one that should (see
// shouldBootstrap).
func openRaft(cfg Config, peers []Peer, fsm *FSM, ln net.Listener, tlsCfg *tls.Config, notify chan bool) (*raftParts, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	store, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	hlog := newHCLogger(cfg.Logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open snapshot store in %s: %w", cfg.DataDir, err)
	}
	transport := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  newStreamLayer(ln, advertiseAddr(cfg.ID, peers, ln), tlsCfg),
		MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})
	rc := raftConfig(cfg, hlog, notify)
	r, err := newRaft(cfg, rc, fsm, store, snaps, transport)
	if err != nil {
		transport.Close()
		store.Close()
		return nil, fmt.Errorf("start raft node %s: %w", cfg.ID, err)
	}
	parts := &raftParts{raft: r, store: store, transport: transport, snaps: snaps}
	if err := bootstrap(cfg, peers, parts); err != nil {
		parts.close()
		return nil, err
	}
	return parts, nil
}

// openStore checks and opens the node's raft log (DataDir/raft.db). A
// damaged file is ErrDamaged with the recovery in the message, never a
// panic: checkBolt verifies what bbolt would trust, and a panic of bbolt's
// is recovered at this boundary.
func openStore(cfg Config) (store *raftboltdb.BoltStore, err error) {
	path := filepath.Join(cfg.DataDir, "raft.db")
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("raft log %s: %w: bbolt: %v", path, ErrDamaged, p)
		}
		if errors.Is(err, ErrDamaged) {
			err = fmt.Errorf("%w; %s", err, recovery(cfg))
		}
	}()
	if err := checkBolt(path); err != nil {
		return nil, err
	}
	store, err = raftboltdb.NewBoltStore(path)
	if err != nil {
		return nil, fmt.Errorf("open raft store in %s: %w", cfg.DataDir, err)
	}
	return store, nil
}

// newRaft is raft.NewRaft, which replays the log and the latest snapshot,
// with a panic of the stores' turned into ErrDamaged.
func newRaft(cfg Config, rc *raft.Config, fsm *FSM, store *raftboltdb.BoltStore, snaps raft.SnapshotStore,
	transport raft.Transport) (r *raft.Raft, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("replay the raft log and snapshots in %s: %w: %v; %s", cfg.DataDir, ErrDamaged, p, recovery(cfg))
		}
	}()
	return raft.NewRaft(rc, fsm, store, store, snaps, transport)
}

// recovery says how to recover a node whose data dir is damaged.
func recovery(cfg Config) string {
	if len(cfg.Peers) > 1 || cfg.PeersDNS != "" {
		return fmt.Sprintf("move %s aside and restart this node empty: the leader's snapshot catches it up", cfg.DataDir)
	}
	return fmt.Sprintf("a single coordinator has no peer to recover from: the job state in %s is lost (start over in a new directory)", cfg.DataDir)
}

// raftConfig is hashicorp/raft's configuration from ours.
func raftConfig(cfg Config, hlog hclog.Logger, notify chan bool) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	rc.NotifyCh = notify
	if cfg.RaftHeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.RaftHeartbeatTimeout
		rc.LeaderLeaseTimeout = cfg.RaftHeartbeatTimeout / 2
	}
	if cfg.RaftElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.RaftElectionTimeout
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	return rc
}

// bootstrap writes the initial configuration, idempotently: only when the
// node has no raft state at all (a restart with its data dir rejoins with
// what it has) and only on the first peer of the list (the lowest ordinal),
// so two nodes never bootstrap different clusters. Other nodes wait to be
// contacted by the leader.
func bootstrap(cfg Config, peers []Peer, p *raftParts) error {
	has, err := raft.HasExistingState(p.store, p.store, p.snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state in %s: %w", cfg.DataDir, err)
	}
	if has || peers[0].ID != cfg.ID {
		return nil
	}
	var servers []raft.Server
	for _, peer := range peers {
		servers = append(servers, raft.Server{
			ID: raft.ServerID(peer.ID), Address: raft.ServerAddress(peer.RaftAddr), Suffrage: raft.Voter,
		})
	}
	err = p.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft cluster from %s: %w", cfg.ID, err)
	}
	return nil
}

// close shuts raft down and closes its stores, in reverse order of opening.
func (p *raftParts) close() error {
	err := p.raft.Shutdown().Error()
	errs := []error{err, p.transport.Close(), p.store.Close()}
	return errors.Join(errs...)
}

// resolvePeers returns the raft membership: the static list, the DNS-derived
// list, or this node alone.
func resolvePeers(cfg Config, raftAddr string) ([]Peer, error) {
	switch {
	case len(cfg.Peers) > 0:
		for _, p := range cfg.Peers {
			if p.ID == cfg.ID {
				return cfg.Peers, nil
			}
		}
		return nil, fmt.Errorf("peer list does not name this node %s: %w", cfg.ID, ErrConfig)
	case cfg.PeersDNS != "":
		return dnsPeers(cfg.ID, cfg.PeersDNS, raftAddr, cfg.Replicas)
	}
	return []Peer{{ID: cfg.ID, RaftAddr: raftAddr}}, nil
}

// advertiseAddr is this node's address in the peer list (or its listener's).
func advertiseAddr(id string, peers []Peer, ln net.Listener) net.Addr {
	for _, p := range peers {
		if p.ID == id {
			return stringAddr(p.RaftAddr)
		}
	}
	return ln.Addr()
}

// stringAddr is a net.Addr that may be a DNS name.
type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }

// streamLayer is raft's network layer over a listener, with optional mutual
// TLS on both directions. It tracks its connections and closes them all on
// Close (raft's transport leaves pooled and accepted connections open,
// which would leak their reader goroutines on the peers).
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tls.Config

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newStreamLayer(ln net.Listener, advertise net.Addr, cfg *tls.Config) *streamLayer {
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return &streamLayer{Listener: ln, advertise: advertise, tls: cfg, conns: map[*trackedConn]struct{}{}}
}

// Addr is the advertised address (what peers dial).
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Accept waits for a peer's connection.
func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

// Dial connects to a peer's raft address.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	var c net.Conn
	var err error
	if s.tls == nil {
		c, err = d.Dial("tcp", string(addr))
	} else {
		cfg := s.tls.Clone()
		if host, _, herr := net.SplitHostPort(string(addr)); herr == nil {
			cfg.ServerName = host
		}
		c, err = tls.DialWithDialer(d, "tcp", string(addr), cfg)
	}
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

// track records c until it is closed.
func (s *streamLayer) track(c net.Conn) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	t := &trackedConn{Conn: c, s: s}
	s.conns[t] = struct{}{}
	return t, nil
}

// Close closes the listener and every connection.
func (s *streamLayer) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[*trackedConn]struct{}{}
	s.mu.Unlock()
	err := s.Listener.Close()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

// trackedConn removes itself from its stream layer when closed.
type trackedConn struct {
	net.Conn
	s *streamLayer
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// newHCLogger adapts raft's hclog output to slog: each line becomes one
// record with component=raft.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.Info, Output: slogWriter{l}, DisableTime: true,
	})
}

// slogWriter forwards text lines to a slog.Logger.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(line, "[ERROR]"):
		level = slog.LevelError
	case strings.HasPrefix(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.HasPrefix(line, "[DEBUG]"), strings.HasPrefix(line, "[TRACE]"):
		level = slog.LevelDebug
	}
	if _, rest, ok := strings.Cut(line, "]"); ok && strings.HasPrefix(line, "[") {
		line = strings.TrimPrefix(strings.TrimSpace(rest), "raft: ")
	}
	w.l.Log(context.Background(), level, line, "component", "raft")
	return len(p), nil
}

var _ io.Writer = slogWriter{}
