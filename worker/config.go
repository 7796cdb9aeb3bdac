package worker

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/internal/validate"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

// Bounds checked by Config.Validate.
const (
	MinHeartbeat, MaxHeartbeat = 50 * time.Millisecond, time.Minute
	MinWait, MaxWait           = 100 * time.Millisecond, 5 * time.Minute
	MinLeave, MaxLeave         = 100 * time.Millisecond, 5 * time.Minute
	MinRing, MaxRing           = 100 * time.Millisecond, 10 * time.Minute
	MaxThreads                 = 1024
	// DefaultImageCache, MinImageCache and MaxImageCache bound
	// Config.ImageCache; MaxReadAhead bounds Config.ReadAhead.
	DefaultImageCache = shard.DefaultCacheBytes
	MinImageCache     = 4 << 20
	MaxImageCache     = 1 << 40
	MaxReadAhead      = 64
)

// Data sources of Config.Data.
const (
	// DataLocal reads the dataset itself: the folder or URL
	// Config.DataDir (else the job's), or the embedded set. A packed
	// dataset is streamed (only each step's images, ImageCache bytes of
	// them kept) when its catalogue numbers the images as the coordinator
	// does; anything else is loaded whole.
	DataLocal = "local"
	// DataCoordinator fetches the image bytes of its steps from the
	// coordinator (FetchImages), so the worker needs no volume.
	DataCoordinator = "coordinator"
)

// TLSFiles are the PEM files of mutual TLS (Cert, Key, CA); all empty
// means plaintext.
type TLSFiles = tlsfiles.Files

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
	// the listener's address; for 0.0.0.0 or ::, the host's first
	// non-loopback IPv4 address with the listener's port).
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
	TLS TLSFiles
	// Insecure allows a plaintext ring server on a non-loopback Listen
	// address (refused otherwise: Validate); the worker then warns once.
	Insecure bool
	// Threads is the number of compute goroutines of the model (0: all cores).
	Threads int
	// ImageCache bounds the decoded images a worker keeps when it streams
	// (DataCoordinator, or DataLocal with a packed dataset): the step's,
	// ReadAhead steps ahead, and as many earlier ones as fit.
	ImageCache int64
	// ReadAhead is how many steps of images a streaming worker fetches and
	// decodes while the current step trains.
	ReadAhead int
	// Im2colCache caps the im2col matrices the network's workspace keeps
	// from forward for backward (model.SetIm2colCache): less memory, slower
	// steps, the same weights. Default model.DefaultIm2colCache (no cap).
	Im2colCache int64
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
		ImageCache:     DefaultImageCache,
		ReadAhead:      shard.DefaultReadAhead,
		Im2colCache:    model.DefaultIm2colCache,
	}
}

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)).
func (c Config) Validate() error {
	p := validate.New(ErrConfig, "")
	if c.ID == "" {
		p.Addf("ID", "must not be empty")
	}
	if len(c.Coordinators) == 0 {
		p.Addf("Coordinators", "must name at least one address")
	}
	for i, a := range c.Coordinators {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.Addf(fmt.Sprintf("Coordinators[%d]", i), "= %q, must be HOST:PORT (%v)", a, err)
		}
	}
	validate.OneOf(p, "Data", c.Data, DataLocal, DataCoordinator)
	validate.InRange(p, "Heartbeat", c.Heartbeat, MinHeartbeat, MaxHeartbeat)
	validate.InRange(p, "AssignmentWait", c.AssignmentWait, MinWait, MaxWait)
	validate.InRange(p, "LeaveTimeout", c.LeaveTimeout, MinLeave, MaxLeave)
	validate.InRange(p, "RingTimeout", c.RingTimeout, MinRing, MaxRing)
	validate.OneOf(p, "RingTransport", c.RingTransport, cluster.Direct, cluster.InStream)
	validate.InRange(p, "Threads", c.Threads, 0, MaxThreads)
	validate.InRange(p, "ImageCache", c.ImageCache, MinImageCache, MaxImageCache)
	validate.InRange(p, "ReadAhead", c.ReadAhead, 0, MaxReadAhead)
	validate.InRange(p, "Im2colCache", c.Im2colCache, 0, model.DefaultIm2colCache)
	if err := c.TLS.Validate(); err != nil {
		p.Wrap("TLS", err)
	}
	c.validateAddrs(p)
	if msg := tlsfiles.PlaintextProblem(c.TLS, c.Insecure, c.Listen); msg != "" {
		p.Addf("Listen", "%s", msg)
	}
	return p.Err()
}

// validateAddrs checks the listen addresses (MetricsAddr and Advertise may
// be empty).
func (c Config) validateAddrs(p *validate.Problems) {
	for _, f := range []struct{ name, addr string }{{"Listen", c.Listen}, {"MetricsAddr", c.MetricsAddr}, {"Advertise", c.Advertise}} {
		if f.addr == "" && f.name != "Listen" {
			continue
		}
		if _, _, err := net.SplitHostPort(f.addr); err != nil {
			p.Addf(f.name, "= %q, must be HOST:PORT (%v)", f.addr, err)
		}
	}
}
