package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// Ring is this worker's membership in one generation of a ring. Its
// collectives run one at a time in the order they are called (which must be
// the same on every member). It is safe for concurrent use; Close ends it.
type Ring struct {
	svc        *Service
	cfg        Config
	gen        uint64
	ch         Channel
	enc        ringv1.Encoding // of the values on the wire
	prevMaxGen uint64          // the service's newest generation on ch before this one
	members    []string
	rank, n    int

	ctx    context.Context // lifetime of the outgoing lanes
	cancel context.CancelFunc
	out    []*outLane
	inbox  chan inItem   // chunks and lane ends from the previous member
	done   chan struct{} // closed when the ring stops (closed or broken)
	wg     sync.WaitGroup

	closeOnce sync.Once

	mu       sync.Mutex
	err      error // why the ring stopped
	graceful bool  // stopped by Close while idle
	// Incoming lanes: the token of the stream attached to each lane (0 for
	// none) and whether it delivered a chunk. A lane that delivered nothing
	// yet may be taken over by a newer stream (the previous member retried
	// its join); a stream whose lane was taken over is ignored.
	laneToken  []uint64
	laneActive []bool
	laneTaken  []chan struct{} // closed when a newer stream takes the lane over
	tokens     uint64
	seq        uint64 // sequence number of the last collective submitted
	step       uint64 // training step for AllReduceSum
	queue      []*collective
	running    bool
	wake       chan struct{}
	execDone   chan struct{} // closed when the executor exits (nil if never started)

	// Owned by the executor goroutine.
	stash   []inItem // chunks of the next collective that arrived early
	laneEOF []bool   // incoming lanes closed by the previous member
}

// outLane is one outgoing stream to the next member, on its own connection.
type outLane struct {
	idx    int
	ch     Channel // marks the lane's packets (setPriority)
	conn   *grpc.ClientConn
	stream ringv1.RingService_TransferClient
	ended  chan struct{}

	// fw writes the lane's chunks on its direct connection; nil when they
	// travel in the stream.
	fw *frameWriter

	mu  sync.Mutex
	raw []net.Conn // TCP connections dialed for this lane (gRPC's, direct)
}

// send sends one chunk on the lane.
func (l *outLane) send(m *outChunk) error {
	if l.fw != nil {
		return l.fw.write(m)
	}
	return l.stream.SendMsg(m)
}

// closeSend ends the lane's sending side cleanly: the receiver gets all
// chunks sent before, then the end of the lane.
func (l *outLane) closeSend() {
	if l.fw != nil {
		if cw, ok := l.fw.c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	if l.stream != nil {
		_ = l.stream.CloseSend()
	}
}

// dial opens the lane's TCP connection and remembers it, so that a failed
// collective can drop it at once: gRPC's own Close first tries to write a
// GOAWAY and waits up to 5 s when the network is silent.
func (l *outLane) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(sendBufBytes) // best effort: see sendBufBytes
		setPriority(tc, l.ch)
	}
	l.mu.Lock()
	l.raw = append(l.raw, c)
	l.mu.Unlock()
	return c, nil
}

// drop closes the lane's TCP connections.
func (l *outLane) drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.raw {
		_ = c.Close()
	}
	l.raw = nil
}

// inItem is a received chunk, or (err set) the end of an incoming lane;
// io.EOF means the previous member closed the lane cleanly.
type inItem struct {
	lane  int
	token uint64 // of the stream it came from
	msg   *inChunk
	err   error
}

// NewRing joins ring generation gen whose members are the worker
// addresses (host:port) in ring order, as member rank. It opens the lanes to
// the next member and returns when that member has accepted them (it may
// join up to Config.Timeout later than this one). gen must be newer than
// every generation this service joined before (a generation whose join
// failed may be joined again). All members must use the same ChunkBytes
// and Streams; a mismatch is detected and rejected.
func (s *Service) NewRing(ctx context.Context, gen uint64, members []string, rank int) (*Ring, error) {
	return s.NewChannelRing(ctx, Control, gen, members, rank, Float32)
}

// NewChannelRing is NewRing on channel ch with values sent in enc: the
// rings of one generation on different channels have their own lanes and
// run their collectives independently of each other (see Channel). Every
// member of the ring must pass the same enc; a chunk in another encoding is
// rejected.
func (s *Service) NewChannelRing(ctx context.Context, ch Channel, gen uint64, members []string, rank int, enc Encoding) (*Ring, error) {
	if err := checkMembers(members, rank); err != nil {
		return nil, fmt.Errorf("join ring generation %d%s: %w", gen, ch.suffix(), err)
	}
	if enc != Float32 && enc != BFloat16 {
		return nil, fmt.Errorf("join ring generation %d%s: unknown encoding %d", gen, ch.suffix(), int(enc))
	}
	r := s.newRing(gen, members, rank)
	r.ch, r.enc = ch, enc.wire()
	if err := s.add(r); err != nil {
		r.cancel()
		return nil, err
	}
	if err := r.connect(ctx); err != nil {
		r.fail(err)
		r.shutdown()
		s.abandon(r)
		return nil, fmt.Errorf("join ring generation %d%s as rank %d: %w", gen, ch.suffix(), rank, err)
	}
	r.execDone = make(chan struct{})
	r.wg.Add(1)
	go r.execute()
	return r, nil
}

func checkMembers(members []string, rank int) error {
	if len(members) == 0 {
		return errors.New("no members")
	}
	if rank < 0 || rank >= len(members) {
		return fmt.Errorf("rank %d out of range 0..%d", rank, len(members)-1)
	}
	seen := make(map[string]bool, len(members))
	for i, m := range members {
		if m == "" || seen[m] {
			return fmt.Errorf("member %d: address %q empty or repeated", i, m)
		}
		seen[m] = true
	}
	return nil
}

func (s *Service) newRing(gen uint64, members []string, rank int) *Ring {
	ctx, cancel := context.WithCancel(context.Background())
	return &Ring{
		svc: s, cfg: s.cfg, gen: gen, members: append([]string(nil), members...),
		rank: rank, n: len(members), ctx: ctx, cancel: cancel, enc: ringv1.Encoding_ENCODING_FLOAT32,
		inbox: make(chan inItem, inboxDepth), done: make(chan struct{}),
		laneToken: make([]uint64, s.cfg.Streams), laneActive: make([]bool, s.cfg.Streams),
		laneTaken: make([]chan struct{}, s.cfg.Streams),
		wake:      make(chan struct{}, 1),
		laneEOF:   make([]bool, s.cfg.Streams),
	}
}

// Channel is the ring's channel.
func (r *Ring) Channel() Channel { return r.ch }

// Generation is the ring's generation.
func (r *Ring) Generation() uint64 { return r.gen }

// Rank is this member's position in the ring.
func (r *Ring) Rank() int { return r.rank }

// Size is the number of members.
func (r *Ring) Size() int { return r.n }

// DirectLanes is the number of lanes to the next member that carry their
// chunks on direct connections; the others (a peer that does not serve
// Service.Listener, or Transport InStream) carry them in the gRPC stream.
func (r *Ring) DirectLanes() int {
	n := 0
	for _, l := range r.out {
		if l.fw != nil {
			n++
		}
	}
	return n
}

func (r *Ring) next() string  { return r.members[(r.rank+1)%r.n] }
func (r *Ring) prev() string  { return r.members[(r.rank-1+r.n)%r.n] }
func (r *Ring) nextRank() int { return (r.rank + 1) % r.n }
func (r *Ring) prevRank() int { return (r.rank - 1 + r.n) % r.n }

// connect opens the outgoing lanes and waits for the next member to accept
// them, within Config.Timeout.
func (r *Ring) connect(ctx context.Context) error {
	if r.n == 1 {
		return nil
	}
	ready := make(chan error, r.cfg.Streams)
	for i := range r.cfg.Streams {
		l := &outLane{idx: i, ch: r.ch, ended: make(chan struct{})}
		opts := append(r.svc.dialOptions(), grpc.WithContextDialer(l.dial))
		conn, err := grpc.NewClient(r.next(), opts...)
		if err != nil {
			return peerErr(ErrPeer, "dial", r.next(), r.nextRank(), err)
		}
		l.conn = conn
		r.out = append(r.out, l)
		r.wg.Add(1)
		go r.runLane(l, ready)
	}
	timer := time.NewTimer(r.cfg.Timeout)
	defer timer.Stop()
	for got := range r.cfg.Streams {
		select {
		case err := <-ready:
			if err != nil {
				kind := ErrPeer
				if status.Code(err) == codes.DeadlineExceeded { // the next member did not join in time
					kind = ErrTimeout
				}
				return peerErr(kind, "open lane to", r.next(), r.nextRank(), err)
			}
		case <-timer.C:
			return r.connectErr(ErrTimeout, ready, len(r.out)-got)
		case <-ctx.Done():
			return r.connectErr(ctx.Err(), ready, len(r.out)-got)
		}
	}
	return nil
}

// connectErr stops the lanes still opening and reports why they failed.
func (r *Ring) connectErr(kind error, ready <-chan error, pending int) error {
	r.cancel()
	var last error
	for range pending {
		if err := <-ready; err != nil && status.Code(err) != codes.Canceled {
			last = err
		}
	}
	what := fmt.Sprintf("open lanes within %v to", r.cfg.Timeout)
	return peerErr(kind, what, r.next(), r.nextRank(), last)
}

// runLane opens lane l, reports on ready when the next member accepted it,
// then watches the stream until it ends.
func (r *Ring) runLane(l *outLane, ready chan<- error) {
	defer r.wg.Done()
	defer close(l.ended)
	stream, err := r.openLane(l)
	l.stream = stream
	ready <- err
	if err != nil {
		return
	}
	_, err = stream.Recv()
	if errors.Is(err, io.EOF) || r.ctx.Err() != nil {
		return // the next member left cleanly (a later send reports it), or this ring ended the lane
	}
	r.fail(peerErr(ErrPeer, fmt.Sprintf("lane %d to", l.idx), r.next(), r.nextRank(), err))
}

// openLane opens the stream of lane l and waits for the next member's
// acknowledgement, retrying while the member is unreachable (it may not
// listen yet) until the ring's context ends; the error is the last one.
func (r *Ring) openLane(l *outLane) (ringv1.RingService_TransferClient, error) {
	client := ringv1.NewRingServiceClient(l.conn)
	wait := 20 * time.Millisecond
	hello := r.header(l.idx)
	hello.Direct = r.cfg.Transport == Direct
	for {
		stream, err := client.Transfer(r.ctx, grpc.CallContentSubtype(codecName))
		if err == nil {
			err = stream.SendMsg(&outChunk{hdr: hello})
		}
		var ack *ringv1.TransferResponse
		if err == nil {
			ack, err = stream.Recv()
		}
		if err == nil && len(ack.GetDirectToken()) > 0 {
			err = r.openDirect(l, ack.GetDirectToken())
		}
		if err == nil || status.Code(err) != codes.Unavailable {
			return stream, err
		}
		select {
		case <-time.After(wait):
			wait = min(2*wait, 500*time.Millisecond)
		case <-r.ctx.Done():
			return nil, err
		}
	}
}

// openDirect opens the direct connection of lane l, which the next member
// accepted with tok, and makes it carry the lane's chunks.
func (r *Ring) openDirect(l *outLane, tok []byte) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeout)
	defer cancel()
	c, err := l.dial(ctx, r.next())
	if err != nil {
		return fmt.Errorf("dial direct connection: %w", err)
	}
	raw := c
	c, err = handshakeDirect(c, r.next(), tok, r.cfg.dialTLS(), r.cfg.Timeout)
	if err != nil {
		return fmt.Errorf("open direct connection (if only HTTP/2 passes between workers, use Transport InStream: "+
			"whorl worker --ring-transport grpc): %w", err)
	}
	// A sender blocked in a write wakes when the ring's lanes are cancelled.
	context.AfterFunc(r.ctx, func() { _ = raw.Close() })
	l.fw = &frameWriter{c: c}
	return nil
}

// header is the TransferRequest header of this member's messages on lane.
func (r *Ring) header(lane int) *ringv1.TransferRequest {
	return &ringv1.TransferRequest{
		Job: r.cfg.Job, Generation: r.gen, FromRank: uint32(r.rank),
		RingSize: uint32(r.n), Lane: uint32(lane), Channel: uint32(r.ch),
	}
}

// attach checks a lane-opening request from a peer against this ring and
// records the lane; it returns the lane and the stream's token.
func (r *Ring) attach(h *ringv1.TransferRequest) (int, uint64, error) {
	lane := int(h.GetLane())
	switch {
	case int(h.GetRingSize()) != r.n || int(h.GetFromRank()) != r.prevRank():
		return 0, 0, fmt.Errorf("open lane of generation %d: sender rank %d of %d, expected rank %d of %d: %w",
			r.gen, h.GetFromRank(), h.GetRingSize(), r.prevRank(), r.n, ErrRejected)
	case lane >= r.cfg.Streams || h.GetSequence() != 0:
		return 0, 0, fmt.Errorf("open lane %d (sequence %d) from %s: %w", lane, h.GetSequence(), r.prev(), ErrRejected)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, 0, fmt.Errorf("open lane %d from %s: %w", lane, r.prev(), r.err)
	}
	if r.laneActive[lane] {
		return 0, 0, fmt.Errorf("open lane %d from %s: lane already open and in use: %w", lane, r.prev(), ErrRejected)
	}
	r.tokens++
	r.laneToken[lane] = r.tokens
	return lane, r.tokens, nil
}

// takeover marks the stream with token the holder of lane and returns a
// channel closed when a newer stream takes the lane over; the previous
// holder's channel is closed now.
func (r *Ring) takeover(lane int, token uint64) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if r.laneToken[lane] != token { // already taken over between attach and now
		close(ch)
		return ch
	}
	if old := r.laneTaken[lane]; old != nil {
		close(old)
	}
	r.laneTaken[lane] = ch
	return ch
}

// errLaneTakenOver ends the stream of a lane that a newer stream took over.
var errLaneTakenOver = errors.New("lane taken over by a newer stream")

// owns reports whether the stream with token still owns lane.
func (r *Ring) owns(lane int, token uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.laneToken[lane] == token
}

// current reports whether the stream with token still owns lane, and marks
// the lane in use when it delivers a chunk.
func (r *Ring) current(lane int, token uint64, chunk bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.laneToken[lane] != token {
		return false
	}
	if chunk {
		r.laneActive[lane] = true
	}
	return true
}

// receiveLane reads the chunks of an accepted lane with recv into the
// inbox until the lane ends; it returns nil when the previous member closed
// it cleanly.
func (r *Ring) receiveLane(recv func(*inChunk) error, lane int, token uint64) error {
	for {
		m := new(inChunk)
		err := recv(m)
		if err == nil {
			err = r.checkSender(&m.hdr, lane)
			if err != nil {
				m.release()
			}
		}
		it := inItem{lane: lane, token: token, msg: m, err: err}
		if err != nil {
			it.msg = nil
		}
		if !r.current(lane, token, err == nil) {
			m.release()
			return errLaneTakenOver
		}
		select {
		case r.inbox <- it:
		case <-r.done:
			m.release()
			return r.leaveErr()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// checkSender rejects a chunk whose job, generation, sender or lane differ
// from the lane's.
func (r *Ring) checkSender(h *ringv1.TransferRequest, lane int) error {
	if h.GetJob() != r.cfg.Job || h.GetGeneration() != r.gen || Channel(h.GetChannel()) != r.ch ||
		int(h.GetFromRank()) != r.prevRank() || int(h.GetLane()) != lane {
		return fmt.Errorf("chunk on lane %d from %s: job %q generation %d channel %d rank %d lane %d, expected %q %d %d %d %d: %w",
			lane, r.prev(), h.GetJob(), h.GetGeneration(), h.GetChannel(), h.GetFromRank(), h.GetLane(),
			r.cfg.Job, r.gen, r.ch, r.prevRank(), lane, ErrRejected)
	}
	return nil
}

// fail stops the ring because of err (the first failure wins) and cancels
// its lanes, which makes the neighbours fail too.
func (r *Ring) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
		close(r.done)
	}
	r.cancel()
	r.wakeExecutorLocked()
}

// leaveErr is what the incoming lanes' handlers return once the ring
// stopped: nil after a clean Close, the failure otherwise.
func (r *Ring) leaveErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.graceful {
		return nil
	}
	return fmt.Errorf("ring generation %d rank %d stopped: %w", r.gen, r.rank, r.err)
}

// Close leaves the ring. Collectives still queued or running fail with
// ErrClosed (and so do the neighbours'); when idle, the lanes are closed
// cleanly so the neighbours receive everything sent before. Close waits
// for the ring's goroutines and is idempotent.
func (r *Ring) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		first := r.err == nil
		busy := r.running || len(r.queue) > 0
		if first && !busy {
			r.graceful = true
			r.err = fmt.Errorf("ring generation %d: %w", r.gen, ErrClosed)
			close(r.done)
		}
		r.mu.Unlock()
		if first && busy {
			r.fail(fmt.Errorf("ring generation %d closed during a collective: %w", r.gen, ErrClosed))
		}
		r.shutdown()
	})
	return nil
}

// Abort stops the ring at once, as a failure does: collectives in flight
// and later ones fail with ErrClosed, and the lanes are cancelled without
// the graceful end Close gives an idle ring (which waits up to Timeout for
// the next member, who may be the very peer that vanished). For a ring
// whose collectives are all waited for before anything depends on them,
// such as a bulk ring of gradient buckets.
func (r *Ring) Abort() {
	r.closeOnce.Do(func() {
		r.fail(fmt.Errorf("ring generation %d%s aborted: %w", r.gen, r.ch.suffix(), ErrClosed))
		r.shutdown()
	})
}

// shutdown waits for the executor, ends the outgoing lanes (cleanly when
// the ring was closed while idle), closes the connections and forgets the
// ring.
func (r *Ring) shutdown() {
	r.mu.Lock()
	graceful := r.graceful
	r.mu.Unlock()
	r.wakeExecutor()
	if graceful {
		r.closeLanes()
	}
	r.cancel()
	r.wg.Wait()
	r.closeConns()
	r.drainInbox()
	r.svc.remove(r)
}

// closeConns drops the TCP connections of the outgoing lanes (gRPC's
// writers fail at once, even on a silent network) and closes the gRPC
// connections.
func (r *Ring) closeConns() {
	for _, l := range r.out {
		l.drop()
	}
	for _, l := range r.out {
		_ = l.conn.Close()
	}
}

// closeLanes half-closes every outgoing lane and waits, at most Timeout, for
// the next member to end them.
func (r *Ring) closeLanes() {
	r.waitExecutor()
	timer := time.NewTimer(r.cfg.Timeout)
	defer timer.Stop()
	for _, l := range r.out {
		l.closeSend()
	}
	for _, l := range r.out {
		select {
		case <-l.ended:
		case <-timer.C:
			return
		}
	}
}

// drainInbox returns the buffers of chunks nobody will read.
func (r *Ring) drainInbox() {
	for _, it := range r.stash {
		if it.msg != nil {
			it.msg.release()
		}
	}
	r.stash = nil
	for {
		select {
		case it := <-r.inbox:
			if it.msg != nil {
				it.msg.release()
			}
		default:
			return
		}
	}
}
