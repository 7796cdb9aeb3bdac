package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/whorl-ml/whorl/coordinator/blobstore"
	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"google.golang.org/grpc"
)

// replicateTimeout bounds each copy of a blob to another coordinator (the
// copies not needed for the quorum outlive the upload that started them).
const replicateTimeout = 2 * time.Minute

// replicate copies a stored blob to the other voters until, with this node,
// a majority of the raft configuration holds it. The copies beyond the
// quorum finish in the background (see putBlobs).
func (n *Node) replicate(ctx context.Context, digest string) error {
	need, err := n.copiesNeeded()
	if err != nil {
		return fmt.Errorf("replicate blob %s: %w", digest, err)
	}
	addrs := n.peerAddrs()
	if len(addrs) < need {
		return fmt.Errorf("replicate blob %s: %d of %d needed peers have a known address: %w", digest, len(addrs), need, client.ErrNoQuorum)
	}
	return waitQuorum(ctx, digest, n.putBlobs(ctx, digest, addrs), len(addrs), need)
}

// copiesNeeded is how many other coordinators must hold a blob so that,
// with this one, a majority of the raft voters holds it.
func (n *Node) copiesNeeded() (int, error) {
	f := n.rp.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, fmt.Errorf("read raft configuration: %w", err)
	}
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	return voters / 2, nil // majority (voters/2+1) minus this node
}

// putBlobs copies a blob to every peer, each copy in a goroutine owned by
// the node (spawn) and detached from ctx (detach), so the copies beyond the
// quorum outlive the request, bounded by replicateTimeout and the node's
// stop. The returned channel has room for every copy's result.
func (n *Node) putBlobs(ctx context.Context, digest string, addrs map[string]string) <-chan error {
	results := make(chan error, len(addrs))
	for id, addr := range addrs {
		err := n.spawn(func() {
			cctx, cancel := n.detach(ctx, replicateTimeout)
			defer cancel()
			err := n.putBlob(cctx, addr, digest)
			if err != nil {
				n.log.Warn("replicate checkpoint blob", "digest", digest, "peer", id, "err", err)
			}
			results <- err
		})
		if err != nil {
			results <- fmt.Errorf("put blob %s to %s: %w", digest, addr, err)
		}
	}
	return results
}

// waitQuorum waits until need of total copies succeeded, or too many
// failed, or ctx is done; the later results stay in the channel's buffer.
func waitQuorum(ctx context.Context, digest string, results <-chan error, total, need int) error {
	ok, failed := 0, 0
	var errs []error
	for ok < need && total-failed >= need {
		select {
		case err := <-results:
			if err == nil {
				ok++
			} else {
				failed++
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("replicate blob %s: %w", digest, ctx.Err())
		}
	}
	if ok < need {
		return fmt.Errorf("replicate blob %s: %d of %d copies: %w", digest, ok, need, errors.Join(append(errs, client.ErrNoQuorum)...))
	}
	return nil
}

// receiveCheckpoint reads a CommitCheckpoint stream into the blob store and
// returns the header and the blob's digest and size.
func (n *Node) receiveCheckpoint(stream grpc.ClientStreamingServer[pb.CommitCheckpointRequest, pb.CommitCheckpointResponse]) (*pb.CheckpointHeader, string, int64, error) {
	first, err := stream.Recv()
	if err != nil {
		return nil, "", 0, fmt.Errorf("commit checkpoint: read header: %w", err)
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return nil, "", 0, fmt.Errorf("commit checkpoint: first message must be a header: %w", client.ErrBadCheckpoint)
	}
	if int64(hdr.GetSize()) > n.cfg.MaxCheckpointBytes || hdr.GetSize() == 0 {
		return nil, "", 0, fmt.Errorf("commit checkpoint: size %d not in 1..%d: %w", hdr.GetSize(), n.cfg.MaxCheckpointBytes, client.ErrBadCheckpoint)
	}
	w, err := n.blobs.Create()
	if err != nil {
		return nil, "", 0, err
	}
	err = recvChunks(w, int64(hdr.GetSize()), func() ([]byte, error) {
		m, err := stream.Recv()
		return m.GetChunk(), err
	})
	if err != nil {
		return nil, "", 0, fmt.Errorf("commit checkpoint: %w", err)
	}
	digest, err := w.Commit(hdr.GetSha256(), int64(hdr.GetSize()))
	if err != nil {
		return nil, "", 0, fmt.Errorf("commit checkpoint: %w", err)
	}
	return hdr, digest, int64(hdr.GetSize()), nil
}

// commitCheckpoint stores, replicates and commits an uploaded checkpoint.
func (n *Node) commitCheckpoint(ctx context.Context, stream grpc.ClientStreamingServer[pb.CommitCheckpointRequest, pb.CommitCheckpointResponse]) (*pb.Checkpoint, error) {
	if err := n.requireLeader(); err != nil {
		return nil, err
	}
	hdr, digest, size, err := n.receiveCheckpoint(stream)
	n.noteStore(err)
	if err != nil {
		return nil, err
	}
	var jobID string
	var known bool
	var last *StepMetric
	n.fsm.View(func(s *State) {
		_, known = s.Workers[hdr.GetWorkerId()]
		if s.Job != nil {
			jobID = s.Job.ID
			last = lastStepMetric(hdr.GetLastStep(), s.Job, &n.orders)
		}
	})
	if !known {
		return nil, fmt.Errorf("commit checkpoint from %q: %w", hdr.GetWorkerId(), client.ErrUnknownWorker)
	}
	if err := n.replicate(ctx, digest); err != nil {
		return nil, err
	}
	ck := Checkpoint{Digest: digest, Epoch: int(hdr.GetEpoch()), Step: int(hdr.GetStep()), Size: size}
	if _, err := n.propose(ctx, &CommitCheckpoint{JobID: jobID, Generation: hdr.GetGeneration(), Checkpoint: ck, LastStep: last}); err != nil {
		return nil, err
	}
	var out *pb.Checkpoint
	n.fsm.View(func(s *State) { c := normalise(s.Job, ck); out = checkpointPB(&c) })
	n.log.Info("checkpoint committed", "digest", digest, "epoch", out.GetEpoch(), "step", out.GetStep(), "bytes", size)
	return out, nil
}

// checkpointPB converts a checkpoint (nil stays nil).
func checkpointPB(c *Checkpoint) *pb.Checkpoint {
	if c == nil {
		return nil
	}
	return &pb.Checkpoint{Digest: c.Digest, Epoch: uint32(c.Epoch), Step: uint32(c.Step), Size: uint64(c.Size)}
}

// fetchCheckpoint streams a checkpoint (the latest committed one for an
// empty digest), fetching the blob from a peer first if this node lacks it.
func (n *Node) fetchCheckpoint(ctx context.Context, digest string, stream grpc.ServerStreamingServer[pb.FetchCheckpointResponse]) error {
	var info *pb.Checkpoint
	n.fsm.View(func(s *State) {
		if s.Job != nil && s.Job.Checkpoint != nil && (digest == "" || digest == s.Job.Checkpoint.Digest) {
			info = checkpointPB(s.Job.Checkpoint)
		}
	})
	if digest == "" && info == nil {
		return fmt.Errorf("fetch latest checkpoint: none committed: %w", client.ErrBlobNotFound)
	}
	if info == nil {
		info = &pb.Checkpoint{Digest: digest}
	}
	if err := n.fetchBlob(ctx, info.GetDigest()); err != nil {
		return err
	}
	f, size, err := n.blobs.Open(info.GetDigest())
	if err != nil {
		return err
	}
	defer f.Close()
	info.Size = uint64(size)
	if err := stream.Send(&pb.FetchCheckpointResponse{Msg: &pb.FetchCheckpointResponse_Info{Info: info}}); err != nil {
		return err
	}
	return sendChunks(f, func(b []byte) error {
		return stream.Send(&pb.FetchCheckpointResponse{Msg: &pb.FetchCheckpointResponse_Chunk{Chunk: b}})
	})
}

// noteStore records the outcome of storing a blob here: a disk failure
// (blobstore.ErrStore) is kept for JobStatus.StoreError and logged; a success clears
// it. Other errors (a bad upload, a broken stream) leave it as it is.
func (n *Node) noteStore(err error) {
	switch {
	case err == nil:
		if old := n.storeErr.Swap(""); old != "" {
			n.log.Info("checkpoint storage works again", "was", old)
		}
	case errors.Is(err, blobstore.ErrStore):
		n.storeErr.Store(err.Error())
		n.log.Error("cannot store a checkpoint", "err", err)
	}
}

// atomicString is a string read and written atomically ("" initially).
type atomicString struct{ p atomic.Pointer[string] }

func (a *atomicString) Load() string {
	if s := a.p.Load(); s != nil {
		return *s
	}
	return ""
}

func (a *atomicString) Store(s string) { a.p.Store(&s) }

func (a *atomicString) Swap(s string) string {
	if old := a.p.Swap(&s); old != nil {
		return *old
	}
	return ""
}

// lastStepMetric is the metric a checkpoint header carries for the step its
// weights applied last, as StepDone would record it from that step's report
// (the step's images counted from the epoch plan); nil without one.
func lastStepMetric(m *pb.StepMetrics, j *Job, orders *orderCache) *StepMetric {
	if m == nil || j.Phase != PhasePretraining || int(m.GetEpoch()) != j.Epoch {
		return nil
	}
	sm := stepMetricOf(m, len(orders.get(j).Batch(int(m.GetStep()))))
	return &sm
}
