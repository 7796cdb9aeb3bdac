package worker

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/whorl-ml/whorl/cluster"
)

// Bounds checked by Config.Validate.
const (
	MinHeartbeat, MaxHeartbeat = 50 * time.Millisecond, time.Minute
	MinWait, MaxWait           = 100 * time.Millisecond, 5 * time.Minute
	MinLeave, MaxLeave         = 100 * time.Millisecond, 5 * time.Minute
	MinRing, MaxRing           = 100 * time.Millisecond, 10 * time.Minute
	MaxThreads                 = 1024
)

// Data sources of Config.Data.
const (
	// DataLocal reads the dataset itself: the folder Config.DataDir, or the
	// embedded set when DataDir is "".
	DataLocal = "local"
	// DataCoordinator fetches the image bytes of its steps from the
	// coordinator (FetchImages), so the worker needs no volume.
	DataCoordinator = "coordinator"
)

// TLSConfig names the PEM files of mutual TLS; all empty means plaintext.
type TLSConfig struct {
	// CAFile verifies the peers (coordinators and ring neighbours).
	CAFile string
	// CertFile and KeyFile are this worker's certificate, presented both as
	// a server (ring service) and as a client.
	CertFile, KeyFile string
}

// Enabled reports whether any TLS file is configured.
func (c TLSConfig) Enabled() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// Config configures a worker.
type Config struct {
	// ID names the worker, stable across its restarts (default: hostname).
	ID string
	// Coordinators are the gRPC addresses of one or more coordinators; the
	// client follows the raft leader from any of them.
	Coordinators []string
	// Listen is the address of the worker's gRPC server (ring all-reduce
	// service and grpc.health.v1); port 0 picks a free port.
	Listen string
	// Advertise is the ring address announced to the coordinator (default:
	// the listener's address).
	Advertise string
	// Data is DataLocal or DataCoordinator; DataDir is the local folder ("":
	// the embedded set).
	Data    string
	DataDir string
	// Heartbeat is the lease-renewal interval (the coordinator's lease is a
	// few intervals).
	Heartbeat time.Duration
	// AssignmentWait bounds one long poll for a new assignment.
	AssignmentWait time.Duration
	// RingTimeout is the deadline of one ring collective (it covers waiting
	// for the slowest rank's computation); a dead peer is noticed sooner,
	// by its dropped connection or its expired lease.
	RingTimeout time.Duration
	// RingTransport is how this worker's ring lanes carry their chunks:
	// cluster.Direct (default; TCP beside gRPC on the ring port, falling
	// back to in-stream chunks when the peer does not offer it) or
	// cluster.InStream (inside the gRPC stream, for HTTP/2-only networks).
	RingTransport cluster.Transport
	// LeaveTimeout bounds the graceful leave after the context is done
	// (inside Kubernetes' termination grace period).
	LeaveTimeout time.Duration
	// MetricsAddr serves Prometheus metrics at /metrics ("": off).
	MetricsAddr string
	// TLS enables mutual TLS on every connection when configured.
	TLS TLSConfig
	// Threads is the number of compute goroutines of the model (0: all cores).
	Threads int
	// Logger receives structured logs (nil: slog.Default()).
	Logger *slog.Logger
}

// DefaultConfig returns a worker named after the host, talking to a
// coordinator on 127.0.0.1:7401 (the coordinator's default), serving its
// ring on a free port, reading the data itself, heartbeating every second.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	return Config{
		ID:             host,
		Coordinators:   []string{"127.0.0.1:7401"},
		Listen:         "127.0.0.1:0",
		Data:           DataLocal,
		Heartbeat:      time.Second,
		AssignmentWait: 10 * time.Second,
		RingTimeout:    30 * time.Second,
		LeaveTimeout:   5 * time.Second,
	}
}

// Validate reports the first invalid field, naming it and its bound.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("%w: ID must not be empty", ErrConfig)
	case len(c.Coordinators) == 0:
		return fmt.Errorf("%w: Coordinators must name at least one address", ErrConfig)
	case c.Data != DataLocal && c.Data != DataCoordinator:
		return fmt.Errorf("%w: Data %q: want %q or %q", ErrConfig, c.Data, DataLocal, DataCoordinator)
	case c.Heartbeat < MinHeartbeat || c.Heartbeat > MaxHeartbeat:
		return fmt.Errorf("%w: Heartbeat %v out of range %v..%v", ErrConfig, c.Heartbeat, MinHeartbeat, MaxHeartbeat)
	case c.AssignmentWait < MinWait || c.AssignmentWait > MaxWait:
		return fmt.Errorf("%w: AssignmentWait %v out of range %v..%v", ErrConfig, c.AssignmentWait, MinWait, MaxWait)
	case c.LeaveTimeout < MinLeave || c.LeaveTimeout > MaxLeave:
		return fmt.Errorf("%w: LeaveTimeout %v out of range %v..%v", ErrConfig, c.LeaveTimeout, MinLeave, MaxLeave)
	case c.RingTimeout < MinRing || c.RingTimeout > MaxRing:
		return fmt.Errorf("%w: RingTimeout %v out of range %v..%v", ErrConfig, c.RingTimeout, MinRing, MaxRing)
	case c.RingTransport != cluster.Direct && c.RingTransport != cluster.InStream:
		return fmt.Errorf("%w: RingTransport %v is neither %v nor %v", ErrConfig, c.RingTransport, cluster.Direct, cluster.InStream)
	case c.Threads < 0 || c.Threads > MaxThreads:
		return fmt.Errorf("%w: Threads %d out of range 0..%d", ErrConfig, c.Threads, MaxThreads)
	case c.TLS.Enabled() && (c.TLS.CAFile == "" || c.TLS.CertFile == "" || c.TLS.KeyFile == ""):
		return fmt.Errorf("%w: TLS needs CAFile, CertFile and KeyFile together", ErrConfig)
	}
	for i, a := range c.Coordinators {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%w: Coordinators[%d] %q is not HOST:PORT: %w", ErrConfig, i, a, err)
		}
	}
	for name, a := range map[string]string{"Listen": c.Listen, "MetricsAddr": c.MetricsAddr, "Advertise": c.Advertise} {
		if _, _, err := net.SplitHostPort(a); err != nil && (a != "" || name == "Listen") {
			return fmt.Errorf("%w: %s %q is not HOST:PORT: %w", ErrConfig, name, a, err)
		}
	}
	return nil
}
