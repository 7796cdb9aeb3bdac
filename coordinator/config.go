package coordinator

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Peer is one raft server of the static peer list.
type Peer struct {
	ID       string
	RaftAddr string
}

// TLSFiles are the PEM files of mutual TLS; all empty means plaintext.
type TLSFiles struct {
	Cert, Key, CA string
}

// Enabled reports whether any file is given.
func (t TLSFiles) Enabled() bool { return t.Cert != "" || t.Key != "" || t.CA != "" }

// Config configures a coordinator Node.
type Config struct {
	// ID is this node's raft server id (with PeersDNS: the pod name
	// "<name>-<ordinal>").
	ID string
	// RaftAddr is the raft TCP address to listen on (and to advertise when
	// the peer list does not name this node).
	RaftAddr string
	// GRPCAddr is the gRPC address to listen on and advertise.
	GRPCAddr string
	// DataDir holds the raft log and stable store (raft.db), snapshots and
	// checkpoint blobs. Restarting with the same DataDir rejoins.
	DataDir string
	// Peers is the static raft membership; empty with PeersDNS empty means
	// a single embedded node.
	Peers []Peer
	// PeersDNS is a Kubernetes headless Service name: peer i is
	// "<prefix>-<i>.<PeersDNS>:<raft port>" for i < Replicas, where ID is
	// "<prefix>-<ordinal>".
	PeersDNS string
	// Replicas is the number of coordinators with PeersDNS.
	Replicas int

	// HeartbeatInterval is what workers are told to heartbeat at; Lease is
	// how long a worker lives without a heartbeat.
	HeartbeatInterval time.Duration
	Lease             time.Duration
	// WorkerWait bounds how long pretraining waits with no workers before
	// the job fails.
	WorkerWait time.Duration
	// AssignmentWait caps a GetAssignment long poll.
	AssignmentWait time.Duration
	// StragglerFactor names a rank whose median compute time exceeds the
	// median over ranks by this factor.
	StragglerFactor float64

	// Raft timing (hashicorp/raft defaults when zero).
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	// SnapshotThreshold is the number of log entries between snapshots;
	// TrailingLogs is how many entries a snapshot leaves in the log.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration

	// MaxCheckpointBytes bounds an uploaded checkpoint.
	MaxCheckpointBytes int64
	// MetricsAddr serves Prometheus /metrics when not empty.
	MetricsAddr string
	// TLS enables mTLS on raft, gRPC (server and peer clients).
	TLS TLSFiles
	// Phases runs the non-distributed phases of a job (nil: jobs fail at
	// pending with a reason).
	Phases Phases
	// Logger receives structured logs (slog.Default when nil).
	Logger *slog.Logger

	// RaftListener and GRPCListener, when set, are used instead of
	// listening on RaftAddr and GRPCAddr (tests on port 0 and in-process
	// clusters); the Node closes them.
	RaftListener net.Listener
	GRPCListener net.Listener
}

// DefaultConfig returns the defaults: heartbeat 1 s, lease 3 s, workers
// awaited 10 min, long polls of 10 s, stragglers at 1.5x the median.
func DefaultConfig() Config {
	return Config{
		RaftAddr:           "127.0.0.1:7400",
		GRPCAddr:           "127.0.0.1:7401",
		Replicas:           3,
		HeartbeatInterval:  time.Second,
		Lease:              3 * time.Second,
		WorkerWait:         10 * time.Minute,
		AssignmentWait:     10 * time.Second,
		StragglerFactor:    1.5,
		SnapshotThreshold:  1024,
		TrailingLogs:       512,
		SnapshotInterval:   30 * time.Second,
		MaxCheckpointBytes: 1 << 30,
	}
}

// Validate checks the configuration; errors name the field and the bound.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s %s", ErrConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.ID == "" {
		bad("ID", "must not be empty")
	}
	if c.DataDir == "" {
		bad("DataDir", "must not be empty")
	}
	if c.RaftListener == nil && c.RaftAddr == "" {
		bad("RaftAddr", "must be HOST:PORT")
	}
	if c.GRPCListener == nil && c.GRPCAddr == "" {
		bad("GRPCAddr", "must be HOST:PORT")
	}
	if len(c.Peers) > 0 && c.PeersDNS != "" {
		bad("Peers", "and PeersDNS are exclusive")
	}
	if c.PeersDNS != "" && (c.Replicas < 1 || c.Replicas > 9) {
		bad("Replicas", "= %d, must be in 1..9", c.Replicas)
	}
	if c.HeartbeatInterval <= 0 || c.Lease < 2*c.HeartbeatInterval {
		bad("Lease", "= %v, must be at least 2x HeartbeatInterval (%v > 0)", c.Lease, c.HeartbeatInterval)
	}
	if c.WorkerWait <= 0 || c.AssignmentWait <= 0 {
		bad("WorkerWait/AssignmentWait", "must be > 0")
	}
	if c.StragglerFactor <= 1 {
		bad("StragglerFactor", "= %g, must be > 1", c.StragglerFactor)
	}
	if c.MaxCheckpointBytes <= 0 {
		bad("MaxCheckpointBytes", "must be > 0")
	}
	return errors.Join(errs...)
}

// ParsePeers parses "id=host:port,id=host:port".
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want ID=HOST:PORT: %w", part, ErrConfig)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %s address %q: %w", id, addr, ErrConfig)
		}
		if seen[id] {
			return nil, fmt.Errorf("peer id %s given twice: %w", id, ErrConfig)
		}
		seen[id] = true
		out = append(out, Peer{ID: id, RaftAddr: addr})
	}
	return out, nil
}

// dnsPeers derives the peer list of a StatefulSet behind a headless Service:
// ID "<prefix>-<k>" gives peers "<prefix>-<i>.<service>:<port>".
func dnsPeers(id, service, raftAddr string, replicas int) ([]Peer, error) {
	cut := strings.LastIndex(id, "-")
	if cut <= 0 {
		return nil, fmt.Errorf("id %q with PeersDNS: want <name>-<ordinal>: %w", id, ErrConfig)
	}
	if _, err := strconv.Atoi(id[cut+1:]); err != nil {
		return nil, fmt.Errorf("id %q with PeersDNS: ordinal %q: %w", id, id[cut+1:], ErrConfig)
	}
	_, port, err := net.SplitHostPort(raftAddr)
	if err != nil {
		return nil, fmt.Errorf("raft address %q: %w", raftAddr, ErrConfig)
	}
	peers := make([]Peer, replicas)
	for i := range peers {
		name := fmt.Sprintf("%s-%d", id[:cut], i)
		peers[i] = Peer{ID: name, RaftAddr: net.JoinHostPort(name+"."+service, port)}
	}
	return peers, nil
}
