package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// Transport tuning of the ring's connections: large flow-control windows so
// a link is never idle waiting for a window update, and large socket
// buffers so a 16 KiB HTTP/2 frame is not a system call.
const (
	windowBytes = 16 << 20
	ioBufBytes  = 1 << 20
	inboxDepth  = 256
	// sendBufBytes is the kernel send buffer (SO_SNDBUF) of a lane's TCP
	// connection. Capping it (the kernel's autotuned default grows to
	// 4 MiB) keeps the sender only a few hundred KiB ahead of its reader,
	// so the bytes are still in cache when the kernel and the reader copy
	// them: +25-40% busbw on loopback (DESIGN.md). Much smaller values
	// (32 KiB) stall.
	sendBufBytes = 256 << 10
)

// Service is the ring's gRPC endpoint on a worker: it receives the chunks
// that the previous member of each ring streams to it, and it creates the
// rings this worker joins. It is safe for concurrent use.
type Service struct {
	ringv1.UnimplementedRingServiceServer
	cfg Config

	mu      sync.Mutex
	rings   map[ringKey]*Ring
	maxGen  map[Channel]uint64 // highest generation joined, per channel
	changed chan struct{}      // closed and replaced when rings changes
	direct  bool               // serving on a Listener: direct connections offered
	pending map[token]chan directConn
	open    int // Transfer streams in progress (MaxOpenLanes)
}

// MaxOpenLanes bounds the Transfer streams a service holds at once, from
// whoever opens them (before authentication too): a ring needs Streams
// lanes per channel from its one predecessor, and a generation change
// briefly twice that, far below it. Beyond it a new stream is refused at
// once with ResourceExhausted.
const MaxOpenLanes = 4 * MaxStreams

// enter counts a Transfer stream in, or reports false at MaxOpenLanes.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open >= MaxOpenLanes {
		return false
	}
	s.open++
	return true
}

// leave counts a Transfer stream out.
func (s *Service) leave() {
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
}

// OpenLanes is the number of Transfer streams in progress.
func (s *Service) OpenLanes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// NewService validates cfg and returns a Service with no rings.
func NewService(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new ring service: %w", err)
	}
	return &Service{
		cfg: cfg, rings: make(map[ringKey]*Ring), maxGen: make(map[Channel]uint64), changed: make(chan struct{}),
	}, nil
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Register adds the service to gs. The worker owns gs and its listener;
// create gs with ServerOptions so that mutual TLS and the transport tuning
// apply (without them the ring still works, slower, and refuses every peer
// when Config.TLS is set).
func (s *Service) Register(gs *grpc.Server) { ringv1.RegisterRingServiceServer(gs, s) }

// ServerOptions are the grpc.NewServer options the ring needs: credentials
// requiring a verified client certificate when Config.TLS is set, flow
// control windows and buffer sizes for bulk transfer, keepalive so a
// vanished peer's connection is dropped, and Config.Timeout for a
// connection's handshake.
func (s *Service) ServerOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.InitialWindowSize(windowBytes),
		grpc.InitialConnWindowSize(windowBytes),
		grpc.ReadBufferSize(ioBufBytes),
		grpc.WriteBufferSize(ioBufBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
		// a connection that stalls in its TLS or HTTP/2 handshake is
		// dropped within the collective's deadline, not gRPC's 120 s
		grpc.ConnectionTimeout(s.cfg.Timeout),
		experimental.BufferPool(bufPool),
	}
	if s.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(serverTLS(s.cfg.TLS))))
	}
	return opts
}

// dialOptions are the options of the connections to the next member.
func (s *Service) dialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if s.cfg.TLS != nil {
		creds = credentials.NewTLS(s.cfg.dialTLS())
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithInitialWindowSize(windowBytes),
		grpc.WithInitialConnWindowSize(windowBytes),
		grpc.WithReadBufferSize(ioBufBytes),
		grpc.WithWriteBufferSize(ioBufBytes),
		experimental.WithBufferPool(bufPool),
	}
}

// ringKey names a ring on this service: its generation and channel.
type ringKey struct {
	gen uint64
	ch  Channel
}

func (r *Ring) key() ringKey { return ringKey{r.gen, r.ch} }

// add records r as the ring of its generation and channel, which must be
// newer than every generation joined on that channel before.
func (s *Service) add(r *Ring) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	newest := s.maxGen[r.ch]
	if r.gen <= newest && newest != 0 || r.gen == 0 {
		return fmt.Errorf("join ring generation %d%s (newest joined %d, must be > 0 and newer): %w",
			r.gen, r.ch.suffix(), newest, ErrStaleGeneration)
	}
	r.prevMaxGen, s.maxGen[r.ch] = newest, r.gen
	s.rings[r.key()] = r
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// abandon forgets r after a failed join: the generation may be joined
// again, unless a newer one was joined meanwhile.
func (s *Service) abandon(r *Ring) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rings[r.key()] == r {
		delete(s.rings, r.key())
	}
	if s.maxGen[r.ch] == r.gen {
		s.maxGen[r.ch] = r.prevMaxGen
	}
}

// remove forgets r.
func (s *Service) remove(r *Ring) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rings[r.key()] == r {
		delete(s.rings, r.key())
	}
}

// awaitRing returns the ring of generation gen on channel ch, waiting up to
// Timeout for this worker to join it (peers may open lanes before it does).
func (s *Service) awaitRing(ctx context.Context, gen uint64, ch Channel) (*Ring, error) {
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		r, ok := s.rings[ringKey{gen, ch}]
		newest := s.maxGen[ch]
		stale, changed := gen <= newest, s.changed
		s.mu.Unlock()
		switch {
		case ok:
			return r, nil
		case stale:
			return nil, fmt.Errorf("open lane of generation %d%s (newest here %d): %w", gen, ch.suffix(), newest, ErrStaleGeneration)
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, fmt.Errorf("open lane: no ring of generation %d%s joined within %v: %w", gen, ch.suffix(), s.cfg.Timeout, ErrTimeout)
		case <-ctx.Done():
			return nil, fmt.Errorf("open lane of generation %d%s: %w", gen, ch.suffix(), ctx.Err())
		}
	}
}

// Transfer is the RingService handler: it accepts a lane from the previous
// member and feeds its chunks, received in the stream or on the lane's
// direct connection, to the ring until the lane or the ring ends.
func (s *Service) Transfer(stream ringv1.RingService_TransferServer) error {
	if !s.enter() {
		return toStatus(fmt.Errorf("open lane: %d lane streams open here already: %w", MaxOpenLanes, ErrTooManyLanes))
	}
	defer s.leave()
	r, lane, token, direct, err := s.accept(stream)
	if err != nil {
		return toStatus(err)
	}
	taken := r.takeover(lane, token)
	recv := func(m *inChunk) error { return stream.RecvMsg(m) }
	if direct.c != nil {
		defer direct.Close()
		fr := newFrameReader(direct.c, MaxChunkBytes)
		recv = fr.read
	}
	errc := make(chan error, 1)
	go func() { errc <- r.receiveLane(recv, lane, token) }()
	select {
	case err := <-errc:
		return toStatus(err)
	case <-r.done:
		return toStatus(r.leaveErr())
	case <-taken:
		// A newer stream took the lane over: end this one now (its
		// receive unblocks as the stream closes) rather than holding it
		// until the ring ends.
		return toStatus(fmt.Errorf("lane %d from %s: %w", lane, r.prev(), errLaneTakenOver))
	}
}

// accept reads the lane-opening request, checks the peer and the request
// against the ring it names, and acknowledges it; when the sender offered a
// direct connection and this service has a direct listener, it also waits
// for that connection.
func (s *Service) accept(stream ringv1.RingService_TransferServer) (*Ring, int, uint64, directConn, error) {
	var none directConn
	if err := s.authenticate(stream.Context()); err != nil {
		return nil, 0, 0, none, err
	}
	var hello inChunk
	if err := s.receiveHello(stream, &hello); err != nil {
		return nil, 0, 0, none, err
	}
	hello.release()
	h := &hello.hdr
	if h.GetJob() != s.cfg.Job {
		return nil, 0, 0, none, fmt.Errorf("open lane: job %q, this worker runs %q: %w", h.GetJob(), s.cfg.Job, ErrRejected)
	}
	r, err := s.awaitRing(stream.Context(), h.GetGeneration(), Channel(h.GetChannel()))
	if err != nil {
		return nil, 0, 0, none, err
	}
	if err := s.authorizeLane(stream.Context(), h); err != nil {
		return nil, 0, 0, none, err
	}
	lane, token, err := r.attach(h)
	if err != nil {
		return nil, 0, 0, none, err
	}
	d, err := s.acknowledge(stream, r, lane, h.GetDirect())
	return r, lane, token, d, err
}

// receiveHello receives a lane's opening message within Timeout: a stream
// that says nothing is ended then (returning closes it, which unblocks the
// receive) instead of holding a lane slot for as long as its sender likes.
func (s *Service) receiveHello(stream ringv1.RingService_TransferServer, hello *inChunk) error {
	errc := make(chan error, 1)
	go func() { errc <- stream.RecvMsg(hello) }()
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("open lane: receive first message: %w", err)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("open lane: no first message within %v: %w", s.cfg.Timeout, ErrTimeout)
	}
}

// acknowledge accepts the lane, offering a direct connection when the
// sender asked for one and this service can take it, and waits for it.
func (s *Service) acknowledge(stream ringv1.RingService_TransferServer, r *Ring, lane int, direct bool) (directConn, error) {
	ack := &ringv1.TransferResponse{Generation: r.gen}
	var (
		tok token
		ch  chan directConn
	)
	if direct {
		if tok, ch, direct = s.offerDirect(); direct {
			ack.DirectToken = tok[:]
		}
	}
	if err := stream.Send(ack); err != nil {
		if direct {
			s.forget(tok)
		}
		return directConn{}, fmt.Errorf("open lane %d from %s: acknowledge: %w: %w", lane, r.prev(), ErrPeer, err)
	}
	if !direct {
		return directConn{}, nil
	}
	d, err := s.awaitDirect(stream.Context(), tok, ch)
	if err != nil {
		return d, fmt.Errorf("open lane %d from %s: %w", lane, r.prev(), err)
	}
	context.AfterFunc(stream.Context(), d.Close) // the sender's stream ended: stop reading
	return d, nil
}

// authorizeLane asks AuthorizeLane about the lane h opens.
func (s *Service) authorizeLane(ctx context.Context, h *ringv1.TransferRequest) error {
	if s.cfg.TLS == nil || s.cfg.AuthorizeLane == nil {
		return nil
	}
	p, _ := peer.FromContext(ctx)
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return fmt.Errorf("open lane: no TLS peer: %w", ErrUnauthenticated)
	}
	if err := s.cfg.AuthorizeLane(info.State, h.GetGeneration(), int(h.GetFromRank())); err != nil {
		return fmt.Errorf("open lane from %v: %w: %w", p.Addr, ErrUnauthenticated, err)
	}
	return nil
}

// serverTLS is cfg for the accepting end: a client certificate is always
// required. A configuration that already requires one keeps its own
// verification (internal/tlsfiles' SPIFFE check); one that asks for none
// gets the standard chain verification against its ClientCAs (no ClientCAs
// refuses every peer: fail closed).
func serverTLS(cfg *tls.Config) *tls.Config {
	t := cfg.Clone()
	if t.ClientAuth < tls.RequireAnyClientCert || (t.ClientAuth == tls.RequireAnyClientCert && t.VerifyPeerCertificate == nil) {
		t.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t
}

// authenticate refuses a peer without a client certificate when mutual TLS
// is configured (also when the worker's server lacks the credentials of
// ServerOptions); the handshake verified the certificate (serverTLS).
func (s *Service) authenticate(ctx context.Context) error {
	if s.cfg.TLS == nil {
		return nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return fmt.Errorf("open lane: no peer information: %w", ErrUnauthenticated)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return fmt.Errorf("open lane from %v: no verified client certificate: %w", p.Addr, ErrUnauthenticated)
	}
	if s.cfg.AuthorizePeer != nil {
		if err := s.cfg.AuthorizePeer(info.State); err != nil {
			return fmt.Errorf("open lane from %v: %w: %w", p.Addr, ErrUnauthenticated, err)
		}
	}
	return nil
}
