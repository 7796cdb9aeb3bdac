package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/whorl-ml/whorl/internal/validate"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Config configures a Client; start from DefaultConfig.
type Config struct {
	// Addrs are coordinator gRPC addresses; any one is enough, the client
	// learns the leader's from the followers' answers.
	Addrs []string
	// TLS is the client-side mTLS configuration (nil: plaintext); see
	// internal/tlsfiles.
	TLS *tls.Config
	// RetryTimeout bounds one call with its retries (leader elections,
	// restarts), or ctx's deadline when that is earlier.
	RetryTimeout time.Duration
	// AttemptTimeout bounds one attempt of a unary call at one coordinator
	// and, for a streaming call, the wait for the stream to open and for
	// each message to be sent or received. A coordinator that is cut off
	// (packets dropped, not refused) costs one attempt, then the client
	// tries the next address. Keep it well under the worker lease (3 s by
	// default).
	AttemptTimeout time.Duration
	// LongPollMargin is added to a long poll's window (GetAssignment's
	// Wait, or the coordinators' 10 s default cap when unset) to bound its
	// attempt.
	LongPollMargin time.Duration
	// CommitTimeout bounds the wait for CommitCheckpoint's answer once the
	// upload is sent: the leader stores the blob, copies it to a quorum and
	// commits it through raft.
	CommitTimeout time.Duration
	// Logger receives retry notes (slog.Default when nil).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: 30 s per call with its retries, 1 s
// per attempt, a 2 s long-poll margin and 15 s for a checkpoint commit. Addrs
// must be set.
func DefaultConfig() Config {
	return Config{RetryTimeout: 30 * time.Second, AttemptTimeout: defaultAttemptTimeout,
		LongPollMargin: 2 * time.Second, CommitTimeout: 15 * time.Second}
}

// defaultAttemptTimeout is DefaultConfig's AttemptTimeout.
const defaultAttemptTimeout = time.Second

// Validate returns every problem of c (errors.Is(err, ErrConfig)), each
// naming the field and its bound.
func (c Config) Validate() error {
	p := validate.New(ErrConfig, "")
	if len(c.Addrs) == 0 {
		p.Addf("Addrs", "needs at least one coordinator address")
	}
	for i, a := range c.Addrs {
		if a == "" {
			p.Addf(fmt.Sprintf("Addrs[%d]", i), "is empty")
		}
	}
	validate.InRange(p, "AttemptTimeout", c.AttemptTimeout, time.Millisecond, time.Hour)
	validate.InRange(p, "RetryTimeout", c.RetryTimeout, max(c.AttemptTimeout, time.Millisecond), 24*time.Hour)
	validate.InRange(p, "LongPollMargin", c.LongPollMargin, time.Millisecond, time.Hour)
	validate.InRange(p, "CommitTimeout", c.CommitTimeout, time.Millisecond, time.Hour)
	return p.Err()
}

// Client calls the coordinator service and follows the raft leader: a
// follower's NOT_LEADER answer names the leader, which the client calls
// next (and remembers for later calls). Every attempt is bounded
// (AttemptTimeout); an attempt that times out or finds its coordinator
// unreachable marks that address down for a few attempt timeouts (hints
// naming it are ignored, other calls in flight there are abandoned) and
// moves to the next known address; elections are retried with backoff.
// Application errors end the call at once. Errors wrap the package's
// sentinels (errors.Is works across the wire). A Client is safe for
// concurrent use.
type Client struct {
	cfg  Config
	pool *Conns
	log  *slog.Logger

	mu        sync.Mutex
	addrs     []string
	cur       int
	downUntil map[string]time.Time     // addresses that failed recently
	downCh    map[string]chan struct{} // closed when the address is marked down
}

// defaultLongPoll is the coordinators' default cap of a GetAssignment long
// poll (coordinator.Config.AssignmentWait), used to bound a request without a Wait.
const defaultLongPoll = 10 * time.Second

// Dial returns a plaintext Client with the default configuration.
func Dial(addrs ...string) (*Client, error) {
	cfg := DefaultConfig()
	cfg.Addrs = addrs
	return New(cfg)
}

// New returns a Client after validating cfg; it connects lazily.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("coordinator client: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{cfg: cfg, pool: NewConns(cfg.TLS), log: cfg.Logger, addrs: slices.Clone(cfg.Addrs),
		downUntil: map[string]time.Time{}, downCh: map[string]chan struct{}{}}, nil
}

// Close closes the connections.
func (c *Client) Close() error {
	c.pool.Close()
	return nil
}

// svc is the CoordinatorService client of a connection.
func svc(conn *grpc.ClientConn) pb.CoordinatorServiceClient {
	return pb.NewCoordinatorServiceClient(conn)
}

// Register registers a worker and its ring address with no incarnation
// (every call counts as a worker (re)start; see RegisterWorker).
func (c *Client) Register(ctx context.Context, id, ringAddr string) (*pb.RegisterWorkerResponse, error) {
	return c.RegisterWorker(ctx, &pb.RegisterWorkerRequest{WorkerId: id, RingAddr: ringAddr})
}

// RegisterWorker registers a worker. Give req.Incarnation a value unique to
// the worker process so that retries (and re-registrations after a leader
// change) are idempotent.
func (c *Client) RegisterWorker(ctx context.Context, req *pb.RegisterWorkerRequest) (*pb.RegisterWorkerResponse, error) {
	var out *pb.RegisterWorkerResponse
	err := c.do(ctx, "register worker", c.cfg.AttemptTimeout, func(a *attempt) (err error) {
		out, err = svc(a.conn).RegisterWorker(a.ctx, req)
		return err
	})
	return out, err
}

// Heartbeat renews a worker's lease (ErrUnknownWorker: register again).
func (c *Client) Heartbeat(ctx context.Context, id string, generation uint64) (*pb.HeartbeatResponse, error) {
	return c.HeartbeatWorker(ctx, &pb.HeartbeatRequest{WorkerId: id, Generation: generation})
}

// HeartbeatWorker renews a worker's lease; with req.Incarnation set it
// fails with ErrReplaced once another process registered the same id.
func (c *Client) HeartbeatWorker(ctx context.Context, req *pb.HeartbeatRequest) (*pb.HeartbeatResponse, error) {
	var out *pb.HeartbeatResponse
	err := c.do(ctx, "heartbeat", c.cfg.AttemptTimeout, func(a *attempt) (err error) {
		out, err = svc(a.conn).Heartbeat(a.ctx, req)
		return err
	})
	return out, err
}

// Leave deregisters a worker.
func (c *Client) Leave(ctx context.Context, id string) (*pb.LeaveWorkerResponse, error) {
	return c.LeaveWorker(ctx, &pb.LeaveWorkerRequest{WorkerId: id})
}

// LeaveWorker deregisters a worker; with req.Incarnation set it fails with
// ErrReplaced (and removes nothing) once another process registered the
// same id.
func (c *Client) LeaveWorker(ctx context.Context, req *pb.LeaveWorkerRequest) (*pb.LeaveWorkerResponse, error) {
	var out *pb.LeaveWorkerResponse
	err := c.do(ctx, "leave", c.cfg.AttemptTimeout, func(a *attempt) (err error) {
		out, err = svc(a.conn).LeaveWorker(a.ctx, req)
		return err
	})
	return out, err
}

// GetAssignment long-polls for a worker's assignment (see the proto). An
// attempt is bounded by the poll's window plus LongPollMargin, and is
// abandoned early when another call finds its coordinator unreachable.
func (c *Client) GetAssignment(ctx context.Context, req *pb.GetAssignmentRequest) (*pb.GetAssignmentResponse, error) {
	window := defaultLongPoll
	if w := req.GetWait(); w != nil && w.AsDuration() >= 0 {
		window = w.AsDuration()
	}
	var out *pb.GetAssignmentResponse
	err := c.do(ctx, "get assignment", window+c.cfg.LongPollMargin, func(a *attempt) (err error) {
		out, err = svc(a.conn).GetAssignment(a.ctx, req)
		return err
	})
	return out, err
}

// ReportProgress reports a completed step.
func (c *Client) ReportProgress(ctx context.Context, req *pb.ReportProgressRequest) (*pb.ReportProgressResponse, error) {
	var out *pb.ReportProgressResponse
	err := c.do(ctx, "report progress", c.cfg.AttemptTimeout, func(a *attempt) (err error) {
		out, err = svc(a.conn).ReportProgress(a.ctx, req)
		return err
	})
	return out, err
}

// SubmitJob submits an experiment config (JSON) and returns the job id.
func (c *Client) SubmitJob(ctx context.Context, configJSON []byte) (string, error) {
	var out *pb.SubmitJobResponse
	err := c.do(ctx, "submit job", c.cfg.AttemptTimeout, func(a *attempt) (err error) {
		out, err = svc(a.conn).SubmitJob(a.ctx, &pb.SubmitJobRequest{Spec: &pb.JobSpec{ConfigJson: configJSON}})
		return err
	})
	return out.GetJobId(), err
}

// JobStatus returns the leader's view of the job; while no leader is known
// it retries (ErrNoLeader once RetryTimeout passes).
func (c *Client) JobStatus(ctx context.Context) (*pb.JobStatusResponse, error) {
	return c.jobStatus(ctx, &pb.JobStatusRequest{})
}

// JobStatusAllowStale is JobStatus that, when the coordinator it reaches
// knows no leader, takes that node's own applied state instead (an empty
// LeaderId marks it; it may be old or empty after a restart).
func (c *Client) JobStatusAllowStale(ctx context.Context) (*pb.JobStatusResponse, error) {
	return c.jobStatus(ctx, &pb.JobStatusRequest{AllowStale: true})
}

func (c *Client) jobStatus(ctx context.Context, req *pb.JobStatusRequest) (*pb.JobStatusResponse, error) {
	var out *pb.JobStatusResponse
	err := c.do(ctx, "job status", c.cfg.AttemptTimeout, func(a *attempt) (err error) {
		out, err = svc(a.conn).JobStatus(a.ctx, req)
		return err
	})
	return out, err
}

// CancelJob cancels job jobID ("" = the current one) on the leader and
// returns the job's id and the phase it was cancelled in; a job already
// over is refused with ErrWrongPhase.
func (c *Client) CancelJob(ctx context.Context, jobID string) (*pb.CancelJobResponse, error) {
	var out *pb.CancelJobResponse
	err := c.do(ctx, "cancel job", c.cfg.AttemptTimeout, func(a *attempt) (err error) {
		out, err = svc(a.conn).CancelJob(a.ctx, &pb.CancelJobRequest{JobId: jobID})
		return err
	})
	return out, err
}

// FetchResults returns a job's results ("" = the current job).
func (c *Client) FetchResults(ctx context.Context, jobID string) (*pb.FetchResultsResponse, error) {
	var out *pb.FetchResultsResponse
	err := c.do(ctx, "fetch results", c.cfg.AttemptTimeout, func(a *attempt) (err error) {
		out, err = svc(a.conn).FetchResults(a.ctx, &pb.FetchResultsRequest{JobId: jobID})
		return err
	})
	return out, err
}
