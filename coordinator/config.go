package coordinator

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/internal/validate"
)

// Peer is one raft server of the static peer list.
type Peer struct {
	ID       string
	RaftAddr string
}

// TLSFiles are the PEM files of mutual TLS (Cert, Key, CA); all empty
// means plaintext.
type TLSFiles = tlsfiles.Files

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
	// MaxWorkers bounds the registered workers (the lease table and the
	// ring): a new worker id beyond it is refused (ResourceExhausted).
	MaxWorkers int
	// KeepJobs is how many finished jobs' results (report, artifacts and
	// their blobs) the state keeps besides the current job's, newest first
	// (State.History); 0 keeps none. The leader puts it in each SubmitJob.
	KeepJobs int
	// MaxStreams bounds the concurrent calls of one client connection on
	// the gRPC port (grpc.MaxConcurrentStreams).
	MaxStreams int
	// MetricsAddr serves Prometheus /metrics when not empty.
	MetricsAddr string
	// TLS enables mTLS on raft, gRPC (server and peer clients).
	TLS TLSFiles
	// Insecure allows plaintext raft and gRPC on non-loopback addresses
	// (refused otherwise: Validate); the node then warns once.
	Insecure bool
	// Phases runs the non-distributed phases of a job (nil: jobs fail at
	// pending with a reason).
	Phases Phases
	// JobMemoryLimit refuses at submit (ErrJobTooLarge) a job whose
	// estimated peak memory on the leader exceeds it, in bytes, when
	// Phases is a MemoryEstimator; 0 admits every job.
	JobMemoryLimit int64
	// Logger receives structured logs (slog.Default when nil).
	Logger *slog.Logger

	// RaftListener and GRPCListener, when set, are used instead of
	// listening on RaftAddr and GRPCAddr (tests on port 0 and in-process
	// clusters); the Node closes them.
	RaftListener net.Listener
	GRPCListener net.Listener
}

// DefaultConfig returns the defaults: heartbeat 1 s, lease 3 s, workers
// awaited 10 min, long polls of 10 s, stragglers at 1.5x the median, the
// results of 8 finished jobs kept.
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
		MaxWorkers:         256,
		KeepJobs:           8,
		MaxStreams:         128,
	}
}

// MaxKeepJobs bounds Config.KeepJobs: each finished job kept costs its
// report in every snapshot and its result files on every coordinator's
// disk.
const MaxKeepJobs = 1000

// Raft timing floors (hashicorp/raft refuses less; the leader lease is half
// the heartbeat timeout, and raft wants at least 5ms of it).
const (
	minRaftHeartbeat    = 10 * time.Millisecond
	minSnapshotInterval = 5 * time.Millisecond
)

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)), including raft's own
// cross-field bounds under our field names.
func (c Config) Validate() error {
	p := validate.New(ErrConfig, "")
	if c.ID == "" {
		p.Addf("ID", "must not be empty")
	}
	if c.DataDir == "" {
		p.Addf("DataDir", "must not be empty")
	}
	if c.RaftListener == nil && c.RaftAddr == "" {
		p.Addf("RaftAddr", "must be HOST:PORT")
	}
	if c.GRPCListener == nil && c.GRPCAddr == "" {
		p.Addf("GRPCAddr", "must be HOST:PORT")
	}
	if len(c.Peers) > 0 && c.PeersDNS != "" {
		p.Addf("Peers", "and PeersDNS are exclusive")
	}
	if err := c.TLS.Validate(); err != nil {
		p.Wrap("TLS", err)
	}
	c.validatePlaintext(p)
	if c.JobMemoryLimit < 0 {
		p.Addf("JobMemoryLimit", "must be >= 0 (0: no limit), got %d", c.JobMemoryLimit)
	}
	if c.PeersDNS != "" {
		validate.InRange(p, "Replicas", c.Replicas, 1, 9)
	}
	c.validateTimings(p)
	c.validateRaft(p)
	return p.Err()
}

// validatePlaintext refuses raft or gRPC on a non-loopback address without
// TLS unless Insecure is set.
func (c Config) validatePlaintext(p *validate.Problems) {
	for _, f := range []struct {
		name, addr string
		ln         net.Listener
	}{{"RaftAddr", c.RaftAddr, c.RaftListener}, {"GRPCAddr", c.GRPCAddr, c.GRPCListener}} {
		addr := f.addr
		if f.ln != nil {
			addr = f.ln.Addr().String()
		}
		if msg := tlsfiles.PlaintextProblem(c.TLS, c.Insecure, addr); msg != "" {
			p.Addf(f.name, "%s", msg)
		}
	}
}

// validateTimings checks the worker-facing timings and limits.
func (c Config) validateTimings(p *validate.Problems) {
	if c.HeartbeatInterval <= 0 || c.Lease < 2*c.HeartbeatInterval {
		p.Addf("Lease", "= %v, must be at least 2x HeartbeatInterval (%v, > 0)", c.Lease, c.HeartbeatInterval)
	}
	if c.WorkerWait <= 0 {
		p.Addf("WorkerWait", "= %v, must be > 0", c.WorkerWait)
	}
	if c.AssignmentWait <= 0 {
		p.Addf("AssignmentWait", "= %v, must be > 0", c.AssignmentWait)
	}
	if !(c.StragglerFactor > 1) {
		p.Addf("StragglerFactor", "= %g, must be > 1", c.StragglerFactor)
	}
	if c.MaxCheckpointBytes <= 0 {
		p.Addf("MaxCheckpointBytes", "= %d, must be > 0", c.MaxCheckpointBytes)
	}
	validate.InRange(p, "MaxWorkers", c.MaxWorkers, 1, 1<<16)
	validate.InRange(p, "MaxStreams", c.MaxStreams, 8, 1<<16)
	validate.InRange(p, "KeepJobs", c.KeepJobs, 0, MaxKeepJobs)
}

// validateRaft checks the raft timings as hashicorp/raft will (on the
// values raftConfig derives, defaults included), so a bad value is refused
// here under our field names instead of inside Run under raft's.
func (c Config) validateRaft(p *validate.Problems) {
	rc, before := raftConfig(c, nil, nil), p.Len()
	if c.RaftHeartbeatTimeout < 0 || (c.RaftHeartbeatTimeout > 0 && c.RaftHeartbeatTimeout < minRaftHeartbeat) {
		p.Addf("RaftHeartbeatTimeout", "= %v, must be 0 (raft's default) or at least %v", c.RaftHeartbeatTimeout, minRaftHeartbeat)
	}
	if c.RaftElectionTimeout < 0 || (c.RaftElectionTimeout > 0 && c.RaftElectionTimeout < rc.HeartbeatTimeout) {
		p.Addf("RaftElectionTimeout", "= %v, must be 0 (raft's default) or at least RaftHeartbeatTimeout (%v)", c.RaftElectionTimeout, rc.HeartbeatTimeout)
	} else if rc.ElectionTimeout < rc.HeartbeatTimeout {
		p.Addf("RaftHeartbeatTimeout", "= %v, must be at most the election timeout (%v; set RaftElectionTimeout)", rc.HeartbeatTimeout, rc.ElectionTimeout)
	}
	if c.SnapshotInterval < 0 || (c.SnapshotInterval > 0 && c.SnapshotInterval < minSnapshotInterval) {
		p.Addf("SnapshotInterval", "= %v, must be 0 (raft's default) or at least %v", c.SnapshotInterval, minSnapshotInterval)
	}
	if p.Len() > before || c.ID == "" {
		return
	}
	if err := raft.ValidateConfig(rc); err != nil { // a bound raft adds later
		p.Wrap("raft", err)
	}
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
