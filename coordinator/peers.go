package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/whorl-ml/whorl/coordinator/blobstore"
	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"google.golang.org/grpc"
)

// peer returns the PeerService client of the coordinator at addr.
func peer(p *client.Conns, addr string) (pb.PeerServiceClient, error) {
	c, err := p.Get(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewPeerServiceClient(c), nil
}

// announce tells the leader at addr this node's gRPC address.
func announce(ctx context.Context, p *client.Conns, addr, id, grpcAddr string) error {
	c, err := peer(p, addr)
	if err != nil {
		return err
	}
	_, err = c.Announce(ctx, &pb.AnnounceRequest{Id: id, GrpcAddr: grpcAddr})
	return client.FromStatus(err)
}

// putBlob sends a stored blob to the coordinator at addr.
func (n *Node) putBlob(ctx context.Context, addr, digest string) error {
	c, err := peer(n.pool, addr)
	if err != nil {
		return err
	}
	f, size, err := n.blobs.Open(digest)
	if err != nil {
		return err
	}
	defer f.Close()
	stream, err := c.PutBlob(ctx)
	if err != nil {
		return fmt.Errorf("put blob %s to %s: %w", digest, addr, client.FromStatus(err))
	}
	hdr := &pb.PutBlobRequest{Msg: &pb.PutBlobRequest_Header{Header: &pb.BlobHeader{Digest: digest, Size: uint64(size)}}}
	if err := stream.Send(hdr); err != nil {
		return fmt.Errorf("put blob %s to %s: %w", digest, addr, err)
	}
	err = sendChunks(f, func(b []byte) error {
		return stream.Send(&pb.PutBlobRequest{Msg: &pb.PutBlobRequest_Chunk{Chunk: b}})
	})
	if err != nil {
		return fmt.Errorf("put blob %s to %s: %w", digest, addr, err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return fmt.Errorf("put blob %s to %s: %w", digest, addr, client.FromStatus(err))
	}
	return nil
}

// sendChunks reads r to the end in client.ChunkSize pieces and sends each.
func sendChunks(r io.Reader, send func([]byte) error) error {
	buf := make([]byte, client.ChunkSize)
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if serr := send(append([]byte(nil), buf[:k]...)); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fetchBlob copies a blob this node lacks from the first other coordinator
// that has it.
func (n *Node) fetchBlob(ctx context.Context, digest string) error {
	if n.blobs.Has(digest) {
		return nil
	}
	var errs []error
	for id, addr := range n.peerAddrs() {
		err := n.getBlobFrom(ctx, addr, digest)
		if err == nil {
			n.log.Info("fetched checkpoint blob from peer", "digest", digest, "peer", id)
			return nil
		}
		errs = append(errs, err)
	}
	here := "missing here"
	if aside, ok := n.blobs.Damaged(digest); ok {
		here = "damaged here (kept as " + aside + ")"
	}
	return fmt.Errorf("fetch blob %s: %s and not on any peer: %w", digest, here, errors.Join(append(errs, client.ErrBlobNotFound)...))
}

// ensureBlob makes an intact copy of the blob available here: verified in
// the store, or (missing or damaged, then moved aside) fetched from a peer.
// It wraps ErrBlobNotFound, with what went wrong here, when no coordinator
// holds an intact copy.
func (n *Node) ensureBlob(ctx context.Context, digest string) error {
	if err := n.fetchBlob(ctx, digest); err != nil {
		return err
	}
	f, _, err := n.blobs.Open(digest)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, client.ErrBlobNotFound) {
		return err
	}
	if ferr := n.fetchBlob(ctx, digest); ferr != nil { // the damaged one is aside now
		return fmt.Errorf("%w; %w", err, ferr)
	}
	return nil
}

// getBlobFrom streams a blob from the coordinator at addr into the store.
func (n *Node) getBlobFrom(ctx context.Context, addr, digest string) error {
	c, err := peer(n.pool, addr)
	if err != nil {
		return err
	}
	stream, err := c.GetBlob(ctx, &pb.GetBlobRequest{Digest: digest})
	if err != nil {
		return fmt.Errorf("get blob %s from %s: %w", digest, addr, client.FromStatus(err))
	}
	w, err := n.blobs.Create()
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			w.Abort()
			return fmt.Errorf("get blob %s from %s: %w", digest, addr, client.FromStatus(err))
		}
		if _, err := w.Write(msg.GetChunk()); err != nil {
			w.Abort()
			return err
		}
	}
	_, err = w.Commit(digest, -1)
	return err
}

// peerAddrs returns the gRPC addresses of the other raft servers that have
// announced one.
func (n *Node) peerAddrs() map[string]string {
	out := map[string]string{}
	f := n.rp.raft.GetConfiguration()
	if f.Error() != nil {
		return out
	}
	n.fsm.View(func(s *State) {
		for _, srv := range f.Configuration().Servers {
			id := string(srv.ID)
			if addr := s.Coordinators[id]; id != n.cfg.ID && addr != "" {
				out[id] = addr
			}
		}
	})
	return out
}

// blobGrace is how long an unreferenced blob is kept: longer than an upload
// and its replication take before the digest commits.
const blobGrace = 10 * time.Minute

// repairBlobs fetches the committed blobs this node lacks (the current
// job's checkpoints and result artifacts, History's artifacts) and prunes
// blobs no longer referenced.
func (n *Node) repairBlobs(ctx context.Context) {
	var keep []string
	n.fsm.View(func(s *State) { keep = s.keepDigests() })
	for _, d := range keep {
		if err := n.fetchBlob(ctx, d); err != nil {
			n.log.Debug("repair checkpoint blob", "digest", d, "err", err)
		}
	}
	if len(keep) > 0 {
		if err := n.blobs.Prune(keep, blobGrace); err != nil {
			n.log.Warn("prune checkpoint blobs", "err", err)
		}
	}
}

// peerServer implements PeerService.
type peerServer struct {
	pb.UnimplementedPeerServiceServer
	n *Node
}

// PutBlob stores a blob sent by another coordinator after verifying it.
func (s *peerServer) PutBlob(stream grpc.ClientStreamingServer[pb.PutBlobRequest, pb.PutBlobResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return client.Status(fmt.Errorf("put blob: read header: %w", err))
	}
	hdr := first.GetHeader()
	if hdr == nil || !blobstore.ValidDigest(hdr.GetDigest()) {
		return client.Status(fmt.Errorf("put blob: first message must be a header with a sha256 digest: %w", client.ErrBadCheckpoint))
	}
	if size := int64(hdr.GetSize()); size < 0 || size > s.n.cfg.MaxCheckpointBytes { // 0: an empty result file
		return client.Status(fmt.Errorf("put blob %s: size %d not in 0..%d: %w", hdr.GetDigest(), size, s.n.cfg.MaxCheckpointBytes, client.ErrBadCheckpoint))
	}
	if s.n.blobs.Has(hdr.GetDigest()) {
		return stream.SendAndClose(&pb.PutBlobResponse{})
	}
	w, err := s.n.blobs.Create()
	if err != nil {
		return client.Status(err)
	}
	if err := recvChunks(w, int64(hdr.GetSize()), func() ([]byte, error) {
		m, err := stream.Recv()
		return m.GetChunk(), err
	}); err != nil {
		return client.Status(fmt.Errorf("put blob %s: %w", hdr.GetDigest(), err))
	}
	if _, err := w.Commit(hdr.GetDigest(), int64(hdr.GetSize())); err != nil {
		return client.Status(err)
	}
	return stream.SendAndClose(&pb.PutBlobResponse{})
}

// recvChunks writes received chunks to w until EOF; it aborts w (no file
// is left) on error, and as soon as the bytes would exceed limit, the size
// the sender declared, before writing them.
func recvChunks(w *blobstore.Writer, limit int64, recv func() ([]byte, error)) error {
	for {
		b, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			w.Abort()
			return err
		}
		if w.Written()+int64(len(b)) > limit {
			w.Abort()
			return fmt.Errorf("more than the %d bytes declared: %w", limit, client.ErrBadCheckpoint)
		}
		if _, err := w.Write(b); err != nil {
			w.Abort()
			return err
		}
	}
}

// GetBlob streams a stored blob.
func (s *peerServer) GetBlob(req *pb.GetBlobRequest, stream grpc.ServerStreamingServer[pb.GetBlobResponse]) error {
	f, _, err := s.n.blobs.Open(req.GetDigest())
	if err != nil {
		return client.Status(err)
	}
	defer f.Close()
	return client.Status(sendChunks(f, func(b []byte) error { return stream.Send(&pb.GetBlobResponse{Chunk: b}) }))
}

// Announce records another coordinator's gRPC address (leader only).
func (s *peerServer) Announce(ctx context.Context, req *pb.AnnounceRequest) (*pb.AnnounceResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, client.Status(err)
	}
	if req.GetId() == "" || req.GetGrpcAddr() == "" {
		return nil, client.Status(fmt.Errorf("announce: id and grpc_addr are required: %w", client.ErrBadRequest))
	}
	if _, err := s.n.propose(ctx, &Announce{ID: req.GetId(), GRPCAddr: req.GetGrpcAddr()}); err != nil {
		return nil, client.Status(err)
	}
	return &pb.AnnounceResponse{}, nil
}
