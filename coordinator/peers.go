package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// blobChunk is the chunk size of blob and checkpoint streams.
const blobChunk = 256 << 10

// maxMsg is the largest gRPC message the coordinator sends or accepts
// (chunks and image batches stay well below it).
const maxMsg = 16 << 20

// connPool caches client connections to other coordinators by address.
type connPool struct {
	tls   *tls.Config
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newConnPool(tlsCfg *tls.Config) *connPool {
	return &connPool{tls: tlsCfg, conns: map[string]*grpc.ClientConn{}}
}

// dialOptions are the options of every coordinator client connection.
func dialOptions(tlsCfg *tls.Config) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)),
	}
}

// get returns the connection to addr, creating it.
func (p *connPool) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, dialOptions(p.tls)...)
	if err != nil {
		return nil, fmt.Errorf("dial coordinator %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

func (p *connPool) peer(addr string) (pb.PeerServiceClient, error) {
	c, err := p.get(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewPeerServiceClient(c), nil
}

// close closes every connection.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		c.Close()
		delete(p.conns, addr)
	}
}

// announce tells the leader at addr this node's gRPC address.
func (p *connPool) announce(ctx context.Context, addr, id, grpcAddr string) error {
	c, err := p.peer(addr)
	if err != nil {
		return err
	}
	_, err = c.Announce(ctx, &pb.AnnounceRequest{Id: id, GrpcAddr: grpcAddr})
	return fromStatus(err)
}

// putBlob sends a stored blob to the coordinator at addr.
func (n *Node) putBlob(ctx context.Context, addr, digest string) error {
	c, err := n.pool.peer(addr)
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
		return fmt.Errorf("put blob %s to %s: %w", digest, addr, fromStatus(err))
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
		return fmt.Errorf("put blob %s to %s: %w", digest, addr, fromStatus(err))
	}
	return nil
}

// sendChunks reads r to the end in blobChunk pieces and sends each.
func sendChunks(r io.Reader, send func([]byte) error) error {
	buf := make([]byte, blobChunk)
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
	return fmt.Errorf("fetch blob %s from peers: %w", digest, errors.Join(append(errs, ErrBlobNotFound)...))
}

// getBlobFrom streams a blob from the coordinator at addr into the store.
func (n *Node) getBlobFrom(ctx context.Context, addr, digest string) error {
	c, err := n.pool.peer(addr)
	if err != nil {
		return err
	}
	stream, err := c.GetBlob(ctx, &pb.GetBlobRequest{Digest: digest})
	if err != nil {
		return fmt.Errorf("get blob %s from %s: %w", digest, addr, fromStatus(err))
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
			return fmt.Errorf("get blob %s from %s: %w", digest, addr, fromStatus(err))
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

// repairBlobs fetches the committed checkpoint blobs this node lacks and
// prunes blobs no longer referenced.
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
		return statusError(fmt.Errorf("put blob: read header: %w", err))
	}
	hdr := first.GetHeader()
	if hdr == nil || !validDigest(hdr.GetDigest()) {
		return statusError(fmt.Errorf("put blob: first message must be a header with a sha256 digest: %w", ErrBadCheckpoint))
	}
	if s.n.blobs.Has(hdr.GetDigest()) {
		return stream.SendAndClose(&pb.PutBlobResponse{})
	}
	w, err := s.n.blobs.Create()
	if err != nil {
		return statusError(err)
	}
	if err := recvChunks(w, func() ([]byte, error) {
		m, err := stream.Recv()
		return m.GetChunk(), err
	}); err != nil {
		return statusError(fmt.Errorf("put blob %s: %w", hdr.GetDigest(), err))
	}
	if _, err := w.Commit(hdr.GetDigest(), int64(hdr.GetSize())); err != nil {
		return statusError(err)
	}
	return stream.SendAndClose(&pb.PutBlobResponse{})
}

// recvChunks writes received chunks to w until EOF; it aborts w on error.
func recvChunks(w *BlobWriter, recv func() ([]byte, error)) error {
	for {
		b, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			w.Abort()
			return err
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
		return statusError(err)
	}
	defer f.Close()
	return statusError(sendChunks(f, func(b []byte) error { return stream.Send(&pb.GetBlobResponse{Chunk: b}) }))
}

// Announce records another coordinator's gRPC address (leader only).
func (s *peerServer) Announce(ctx context.Context, req *pb.AnnounceRequest) (*pb.AnnounceResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, statusError(err)
	}
	if req.GetId() == "" || req.GetGrpcAddr() == "" {
		return nil, statusError(fmt.Errorf("announce: id and grpc_addr are required: %w", ErrConfig))
	}
	if _, err := s.n.propose(ctx, &Announce{ID: req.GetId(), GRPCAddr: req.GetGrpcAddr()}); err != nil {
		return nil, statusError(err)
	}
	return &pb.AnnounceResponse{}, nil
}
