package coordinator

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Addrs are coordinator gRPC addresses; any one is enough, the client
	// learns the leader's from the followers' answers.
	Addrs []string
	// TLS is the client-side mTLS configuration (nil: plaintext); see
	// LoadTLS.
	TLS *tls.Config
	// RetryTimeout bounds one call with its retries (leader elections,
	// restarts), or ctx's deadline when that is earlier. Default 30 s.
	RetryTimeout time.Duration
	// Logger receives retry notes (slog.Default when nil).
	Logger *slog.Logger
}

// Client calls the coordinator service and follows the raft leader: a
// follower's NOT_LEADER answer names the leader, which the client calls
// next; unreachable nodes and elections are retried with backoff over every
// known address. Errors wrap the package's sentinels (errors.Is works
// across the wire). A Client is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	pool *connPool
	log  *slog.Logger

	mu    sync.Mutex
	addrs []string
	cur   int
}

// Dial returns a plaintext Client for the given addresses.
func Dial(addrs ...string) (*Client, error) { return NewClient(ClientConfig{Addrs: addrs}) }

// NewClient returns a Client; it connects lazily.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		return nil, fmt.Errorf("%w: coordinator client needs at least one address", ErrConfig)
	}
	if cfg.RetryTimeout <= 0 {
		cfg.RetryTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{cfg: cfg, pool: newConnPool(cfg.TLS), log: cfg.Logger, addrs: slices.Clone(cfg.Addrs)}, nil
}

// Close closes the connections.
func (c *Client) Close() error {
	c.pool.close()
	return nil
}

// Leader returns the address the client currently calls.
func (c *Client) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[c.cur]
}

// follow makes addr the current address (adding it when new).
func (c *Client) follow(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.addrs, addr)
	if i < 0 {
		c.addrs = append(c.addrs, addr)
		i = len(c.addrs) - 1
	}
	c.cur = i
}

// rotate moves to the next known address.
func (c *Client) rotate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = (c.cur + 1) % len(c.addrs)
}

// retryable reports whether another coordinator (or a later attempt) may
// succeed.
func retryable(err error) bool {
	if errors.Is(err, ErrNoLeader) || errors.Is(err, ErrShutdown) || errors.Is(err, ErrNotLeader) ||
		errors.Is(err, ErrNoQuorum) {
		return true
	}
	return status.Code(err) == codes.Unavailable
}

// do calls fn on the leader, following redirects and retrying retryable
// errors with backoff until ctx (or RetryTimeout) ends.
func (c *Client) do(ctx context.Context, op string, fn func(context.Context, *grpc.ClientConn) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RetryTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		addr := c.Leader()
		conn, err := c.pool.get(addr)
		if err == nil {
			err = fromStatus(fn(ctx, conn))
		}
		if err == nil {
			return nil
		}
		var nl *NotLeaderError
		switch {
		case errors.As(err, &nl) && nl.LeaderAddr != "" && nl.LeaderAddr != addr:
			c.follow(nl.LeaderAddr)
			continue
		case !retryable(err):
			return fmt.Errorf("%s via %s: %w", op, addr, err)
		}
		c.rotate()
		c.log.Debug("coordinator call retried", "op", op, "addr", addr, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s via %s: %w (gave up: %w)", op, addr, err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
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
	err := c.do(ctx, "register worker", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		out, err = svc(conn).RegisterWorker(ctx, req)
		return err
	})
	return out, err
}

// Heartbeat renews a worker's lease (ErrUnknownWorker: register again).
func (c *Client) Heartbeat(ctx context.Context, id string, generation uint64) (*pb.HeartbeatResponse, error) {
	var out *pb.HeartbeatResponse
	err := c.do(ctx, "heartbeat", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		out, err = svc(conn).Heartbeat(ctx, &pb.HeartbeatRequest{WorkerId: id, Generation: generation})
		return err
	})
	return out, err
}

// Leave deregisters a worker.
func (c *Client) Leave(ctx context.Context, id string) (*pb.LeaveWorkerResponse, error) {
	var out *pb.LeaveWorkerResponse
	err := c.do(ctx, "leave", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		out, err = svc(conn).LeaveWorker(ctx, &pb.LeaveWorkerRequest{WorkerId: id})
		return err
	})
	return out, err
}

// GetAssignment long-polls for a worker's assignment (see the proto).
func (c *Client) GetAssignment(ctx context.Context, req *pb.GetAssignmentRequest) (*pb.GetAssignmentResponse, error) {
	var out *pb.GetAssignmentResponse
	err := c.do(ctx, "get assignment", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		out, err = svc(conn).GetAssignment(ctx, req)
		return err
	})
	return out, err
}

// ReportProgress reports a completed step.
func (c *Client) ReportProgress(ctx context.Context, req *pb.ReportProgressRequest) (*pb.ReportProgressResponse, error) {
	var out *pb.ReportProgressResponse
	err := c.do(ctx, "report progress", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		out, err = svc(conn).ReportProgress(ctx, req)
		return err
	})
	return out, err
}

// CommitCheckpoint uploads data as a checkpoint (hdr's size and sha256 are
// filled in) and returns the committed checkpoint.
func (c *Client) CommitCheckpoint(ctx context.Context, hdr *pb.CheckpointHeader, data []byte) (*pb.Checkpoint, error) {
	sum := sha256.Sum256(data)
	h := &pb.CheckpointHeader{
		WorkerId: hdr.GetWorkerId(), Generation: hdr.GetGeneration(), Epoch: hdr.GetEpoch(), Step: hdr.GetStep(),
		Size: uint64(len(data)), Sha256: hex.EncodeToString(sum[:]),
	}
	var out *pb.Checkpoint
	err := c.do(ctx, "commit checkpoint", func(ctx context.Context, conn *grpc.ClientConn) error {
		stream, err := svc(conn).CommitCheckpoint(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(&pb.CommitCheckpointRequest{Msg: &pb.CommitCheckpointRequest_Header{Header: h}}); err != nil {
			_, rerr := stream.CloseAndRecv()
			return errors.Join(err, rerr)
		}
		for off := 0; off < len(data); off += blobChunk {
			chunk := data[off:min(off+blobChunk, len(data))]
			if err := stream.Send(&pb.CommitCheckpointRequest{Msg: &pb.CommitCheckpointRequest_Chunk{Chunk: chunk}}); err != nil {
				break // the status comes with CloseAndRecv
			}
		}
		resp, err := stream.CloseAndRecv()
		out = resp.GetCheckpoint()
		return err
	})
	return out, err
}

// FetchCheckpoint downloads a checkpoint by digest ("" = latest committed).
// Any coordinator serves it; the client tries the others on failure.
func (c *Client) FetchCheckpoint(ctx context.Context, digest string) (*pb.Checkpoint, []byte, error) {
	var info *pb.Checkpoint
	var data []byte
	err := c.do(ctx, "fetch checkpoint", func(ctx context.Context, conn *grpc.ClientConn) error {
		stream, err := svc(conn).FetchCheckpoint(ctx, &pb.FetchCheckpointRequest{Digest: digest})
		if err != nil {
			return err
		}
		info, data = nil, nil
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if i := msg.GetInfo(); i != nil {
				info, data = i, make([]byte, 0, i.GetSize())
			}
			data = append(data, msg.GetChunk()...)
		}
		return verifyBlob(info, data)
	})
	return info, data, err
}

// verifyBlob checks a downloaded checkpoint against its digest.
func verifyBlob(info *pb.Checkpoint, data []byte) error {
	if info == nil {
		return fmt.Errorf("fetch checkpoint: no info message: %w", ErrBadCheckpoint)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != info.GetDigest() {
		return fmt.Errorf("fetch checkpoint %s: received bytes hash to %s: %w", info.GetDigest(), got, ErrBadCheckpoint)
	}
	return nil
}

// FetchImages downloads the original bytes of images by id.
func (c *Client) FetchImages(ctx context.Context, ids []int32) ([]*pb.FetchImagesResponse, error) {
	var out []*pb.FetchImagesResponse
	err := c.do(ctx, "fetch images", func(ctx context.Context, conn *grpc.ClientConn) error {
		stream, err := svc(conn).FetchImages(ctx, &pb.FetchImagesRequest{Ids: ids})
		if err != nil {
			return err
		}
		out = out[:0]
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			out = append(out, msg)
		}
	})
	return out, err
}

// SubmitJob submits an experiment config (JSON) and returns the job id.
func (c *Client) SubmitJob(ctx context.Context, configJSON []byte) (string, error) {
	var out *pb.SubmitJobResponse
	err := c.do(ctx, "submit job", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		out, err = svc(conn).SubmitJob(ctx, &pb.SubmitJobRequest{Spec: &pb.JobSpec{ConfigJson: configJSON}})
		return err
	})
	return out.GetJobId(), err
}

// JobStatus returns the leader's view of the job.
func (c *Client) JobStatus(ctx context.Context) (*pb.JobStatusResponse, error) {
	var out *pb.JobStatusResponse
	err := c.do(ctx, "job status", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		out, err = svc(conn).JobStatus(ctx, &pb.JobStatusRequest{})
		return err
	})
	return out, err
}

// FetchResults returns a job's results ("" = the current job).
func (c *Client) FetchResults(ctx context.Context, jobID string) (*pb.FetchResultsResponse, error) {
	var out *pb.FetchResultsResponse
	err := c.do(ctx, "fetch results", func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		out, err = svc(conn).FetchResults(ctx, &pb.FetchResultsRequest{JobId: jobID})
		return err
	})
	return out, err
}
