package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// collective is one all-reduce queued on a ring.
type collective struct {
	ctx  context.Context
	seq  uint64
	step uint64
	buf  []float32
	err  error
	done chan struct{}
}

// submit queues an all-reduce of buf, numbering it with the ring's next
// sequence number; it fails at once when the ring stopped.
func (r *Ring) submit(ctx context.Context, step uint64, buf []float32) *collective {
	c := &collective{ctx: ctx, step: step, buf: buf, done: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil || ctx.Err() != nil {
		c.err = r.brokenErr(step)
		if r.err == nil { // not started: the ring stays in step
			c.err = fmt.Errorf("all-reduce step %d: not started: %w", step, ctx.Err())
		}
		close(c.done)
		return c
	}
	r.seq++
	c.seq = r.seq
	r.queue = append(r.queue, c)
	r.wakeExecutorLocked()
	return c
}

// brokenErr is the error of a collective submitted after the ring stopped.
func (r *Ring) brokenErr(step uint64) error {
	if errors.Is(r.err, ErrClosed) {
		return fmt.Errorf("all-reduce step %d: %w", step, r.err)
	}
	return fmt.Errorf("all-reduce step %d: %w: %w", step, ErrBroken, r.err)
}

func (r *Ring) wakeExecutorLocked() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Ring) wakeExecutor() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wakeExecutorLocked()
}

func (r *Ring) waitExecutor() {
	if r.execDone != nil {
		<-r.execDone
	}
}

// execute runs the queued collectives one at a time until the ring stops,
// then fails those still queued.
func (r *Ring) execute() {
	defer r.wg.Done()
	defer close(r.execDone)
	for {
		c := r.dequeue()
		if c == nil {
			return
		}
		c.err = r.run(c)
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
		close(c.done)
	}
}

// dequeue waits for the next collective; nil when the ring stopped (the
// remaining ones are failed).
func (r *Ring) dequeue() *collective {
	for {
		r.mu.Lock()
		if r.err != nil {
			q := r.queue
			r.queue = nil
			for _, c := range q {
				c.err = r.brokenErr(c.step)
				close(c.done)
			}
			r.mu.Unlock()
			return nil
		}
		if len(r.queue) > 0 {
			c := r.queue[0]
			r.queue = r.queue[1:]
			r.running = true
			r.mu.Unlock()
			return c
		}
		r.mu.Unlock()
		<-r.wake
	}
}

// run performs collective c within Config.Timeout; any failure breaks the
// ring (its members are out of step).
func (r *Ring) run(c *collective) error {
	if r.n > 1 {
		ctx, cancel := context.WithTimeout(c.ctx, r.cfg.Timeout)
		defer cancel()
		// A sender blocked by flow control only wakes when its stream dies.
		stop := context.AfterFunc(ctx, r.cancel)
		err := newExchange(r, c).run(ctx)
		if !stop() && err == nil {
			err = fmt.Errorf("all-reduce step %d: finished as the deadline passed: %w", c.step, ErrTimeout)
		}
		if err != nil {
			r.fail(err)
			r.closeConns() // gRPC stops reading c.buf before the caller gets it back
			return err
		}
	}
	return nil
}

// task is one piece to send: piece k of the segment sent at ring step t.
type task struct{ t, k int }

// exchange is the state of one running collective on one member.
type exchange struct {
	r          *Ring
	c          *collective
	p          plan
	queues     []chan task
	seen       []bool        // received, by t*maxPieces+k
	sent       []atomic.Bool // sent and released by gRPC, by t*maxPieces+k
	unreleased atomic.Int64  // pieces handed to gRPC and not yet released
	progress   chan struct{} // signalled after every release
	maxP       int
	left       int   // messages still to receive
	laneLeft   []int // per lane
	pending    []inItem
}

func newExchange(r *Ring, c *collective) *exchange {
	p := newPlan(r.n, r.rank, len(c.buf), r.cfg.ChunkBytes/bytesPerValue(r.enc), r.cfg.Streams)
	x := &exchange{r: r, c: c, p: p, maxP: p.maxPieces()}
	for _, n := range p.sendPerLane() {
		x.queues = append(x.queues, make(chan task, n))
	}
	x.laneLeft = p.recvPerLane()
	for _, n := range x.laneLeft {
		x.left += n
	}
	x.seen = make([]bool, p.steps()*x.maxP)
	x.sent = make([]atomic.Bool, p.steps()*x.maxP)
	x.progress = make(chan struct{}, 1)
	x.pending, r.stash = r.stash, nil
	return x
}

// run sends and receives every piece of the collective.
func (x *exchange) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for l := range x.queues {
		g.Go(func() error { return x.sendLoop(ctx, l) })
	}
	seg := x.p.sendSeg(0)
	for k := range x.p.pieces(seg) {
		x.queues[x.p.lane(k)] <- task{0, k}
	}
	rerr := x.receive(ctx, gctx)
	for _, q := range x.queues {
		close(q)
	}
	if rerr != nil && !errors.Is(rerr, errSendFailed) {
		x.r.fail(rerr) // wake senders blocked in SendMsg
	}
	serr := g.Wait()
	if rerr == nil && serr == nil {
		return x.awaitReleased(ctx)
	}
	if rerr == nil || errors.Is(rerr, errSendFailed) {
		return serr
	}
	return rerr
}

// errSendFailed tells run that the receive loop stopped because a sender
// failed, whose error is the one to report.
var errSendFailed = errors.New("a sender failed")

// sendLoop sends the pieces queued for lane l, in order.
func (x *exchange) sendLoop(ctx context.Context, l int) error {
	r := x.r
	hdr := r.header(l)
	hdr.Sequence, hdr.Step, hdr.Length, hdr.Encoding = x.c.seq, x.c.step, uint64(len(x.c.buf)), r.enc
	for tk := range x.queues[l] {
		lo, hi := x.p.piece(x.p.sendSeg(tk.t), tk.k)
		hdr.RingStep, hdr.Piece = uint32(tk.t), uint32(tk.k)
		idx := tk.t*x.maxP + tk.k
		x.unreleased.Add(1)
		msg := &outChunk{hdr: hdr, src: x.c.buf[lo:hi], release: sendRelease{x, idx}}
		if err := r.out[l].send(msg); err != nil {
			return x.failure(ctx, fmt.Sprintf("send ring step %d piece %d on lane %d to", tk.t, tk.k, l),
				r.next(), r.nextRank(), err)
		}
		if !msg.zeroCopy {
			x.released(idx) // copied during SendMsg
		}
	}
	return nil
}

// sendRelease is the mem.BufferPool of a piece sent without copying: gRPC
// puts the buffer back once it wrote the piece to the connection.
type sendRelease struct {
	x   *exchange
	idx int
}

// Get is never called: gRPC only returns such buffers.
func (s sendRelease) Get(n int) *[]byte { return bufPool.Get(n) }

// Put records that gRPC no longer reads the piece.
func (s sendRelease) Put(*[]byte) { s.x.released(s.idx) }

// released records that piece idx left this member's memory.
func (x *exchange) released(idx int) {
	x.sent[idx].Store(true)
	x.unreleased.Add(-1)
	select {
	case x.progress <- struct{}{}:
	default:
	}
}

// awaitReleased waits until gRPC no longer reads any piece of the buffer.
func (x *exchange) awaitReleased(ctx context.Context) error {
	for x.unreleased.Load() > 0 {
		select {
		case <-x.progress:
		case <-ctx.Done():
			return x.failure(ctx, "finish sending to", x.r.next(), x.r.nextRank(), nil)
		case <-x.r.done:
			return x.failure(ctx, "finish sending to", x.r.next(), x.r.nextRank(), ErrBroken)
		}
	}
	return nil
}

// failure builds the error of the collective: a timeout if its deadline
// passed, otherwise a peer failure.
func (x *exchange) failure(ctx context.Context, what, peer string, rank int, err error) error {
	what = fmt.Sprintf("all-reduce step %d (collective %d, generation %d, %d values): %s",
		x.c.step, x.c.seq, x.r.gen, len(x.c.buf), what)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return peerErr(ErrTimeout, what, peer, rank, nil)
	case ctx.Err() != nil:
		return peerErr(ctx.Err(), what, peer, rank, nil)
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("peer left the ring")
	}
	return peerErr(ErrPeer, what, peer, rank, err)
}
