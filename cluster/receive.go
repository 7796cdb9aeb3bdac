package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"

	ringv1 "github.com/whorl-ml/whorl/proto/whorl/ring/v1"
)

// receive handles every message this member expects in the collective,
// forwarding each received piece to the next ring step.
func (x *exchange) receive(ctx, gctx context.Context) error {
	for x.left > 0 {
		it, err := x.nextItem(ctx, gctx)
		if err != nil {
			return err
		}
		if it.err != nil {
			if !x.r.owns(it.lane, it.token) {
				continue // the end of a stream whose lane was taken over
			}
			if err := x.laneEnded(ctx, it); err != nil {
				return err
			}
			continue
		}
		if err := x.accept(ctx, it); err != nil {
			return err
		}
	}
	return nil
}

// nextItem returns the next early chunk kept from before, or the next item
// of the inbox.
func (x *exchange) nextItem(ctx, gctx context.Context) (inItem, error) {
	if len(x.pending) > 0 {
		it := x.pending[0]
		x.pending = x.pending[1:]
		return it, nil
	}
	for l, eof := range x.r.laneEOF {
		if eof && x.laneLeft[l] > 0 {
			return inItem{}, x.failure(ctx, fmt.Sprintf("receive on lane %d (%d messages missing) from", l, x.laneLeft[l]),
				x.r.prev(), x.r.prevRank(), io.EOF)
		}
	}
	r := x.r
	select {
	case it := <-r.inbox:
		return it, nil
	case <-gctx.Done():
		if ctx.Err() == nil {
			return inItem{}, errSendFailed
		}
		return inItem{}, x.failure(ctx, "receive from", r.prev(), r.prevRank(), nil)
	case <-r.done:
		if ctx.Err() != nil {
			return inItem{}, x.failure(ctx, "receive from", r.prev(), r.prevRank(), nil)
		}
		r.mu.Lock()
		err := r.err
		r.mu.Unlock()
		return inItem{}, fmt.Errorf("all-reduce step %d (collective %d, generation %d): %w",
			x.c.step, x.c.seq, r.gen, err)
	}
}

// laneEnded handles the end of an incoming lane: a clean end only matters
// if messages are still expected on it; anything else fails the collective.
func (x *exchange) laneEnded(ctx context.Context, it inItem) error {
	if errors.Is(it.err, io.EOF) {
		x.r.laneEOF[it.lane] = true
		return nil
	}
	return x.failure(ctx, fmt.Sprintf("receive on lane %d from", it.lane), x.r.prev(), x.r.prevRank(), it.err)
}

// accept checks a chunk against the collective, adds or copies it into the
// buffer and queues the piece for the next ring step.
func (x *exchange) accept(ctx context.Context, it inItem) error {
	m := it.msg
	if m.hdr.GetSequence() == x.c.seq+1 {
		x.r.stash = append(x.r.stash, it) // the next collective's, sent early
		return nil
	}
	defer m.release()
	t, k, err := x.check(it)
	if err == nil {
		err = finite(m, x.r.enc, t, k)
	}
	if err != nil {
		return x.failure(ctx, "check chunk from", x.r.prev(), x.r.prevRank(), err)
	}
	if t >= x.p.n-1 {
		// All-gather overwrites the piece this member sent at ring step
		// t+1-n; a correct ring only delivers it after that send, but a
		// faulty peer must not make us write what a sender still reads.
		if err := x.awaitSent(ctx, t+1-x.p.n, k); err != nil {
			return err
		}
	}
	lo, hi := x.p.piece(x.p.recvSeg(t), k)
	dst := x.c.buf[lo:hi]
	applyRuns(dst, m, x.r.enc, t < x.p.n-1)
	if t == x.p.n-2 && x.r.enc == ringv1.Encoding_ENCODING_BFLOAT16 {
		roundBF16(dst) // the segment's owner keeps what the others will receive
	}
	x.left--
	x.laneLeft[it.lane]--
	if t+1 < x.p.steps() {
		x.queues[x.p.lane(k)] <- task{t + 1, k}
	}
	return nil
}

// finite refuses a chunk (ring step t, piece k) holding a NaN or an
// infinity: a sender's diverged or forged values would otherwise reach
// every replica's weights. The lane fails naming the sender's rank, and the
// generation re-forms.
func finite(m *inChunk, e ringv1.Encoding, t, k int) error {
	if j := firstNonFinite(m, e); j >= 0 {
		return fmt.Errorf("chunk of ring step %d piece %d: value %d is not finite (NaN or infinity): %w", t, k, j, ErrNonFinite)
	}
	return nil
}

// check validates a chunk's collective, step, position and size, and that
// it was not received before; it returns its ring step and piece.
func (x *exchange) check(it inItem) (t, k int, err error) {
	h := &it.msg.hdr
	switch {
	case h.GetSequence() != x.c.seq || h.GetStep() != x.c.step:
		return 0, 0, fmt.Errorf("chunk of collective %d step %d, expected collective %d step %d: %w",
			h.GetSequence(), h.GetStep(), x.c.seq, x.c.step, ErrRejected)
	case h.GetLength() != uint64(len(x.c.buf)) || h.GetEncoding() != x.r.enc:
		return 0, 0, fmt.Errorf("chunk of a %d-value buffer in %v, this member reduces %d values in %v: %w",
			h.GetLength(), h.GetEncoding(), len(x.c.buf), x.r.enc, ErrRejected)
	}
	t, k = int(h.GetRingStep()), int(h.GetPiece())
	if t >= x.p.steps() || k >= x.p.pieces(x.p.recvSeg(t)) || x.p.lane(k) != it.lane || x.seen[t*x.maxP+k] {
		return 0, 0, fmt.Errorf("chunk of ring step %d piece %d on lane %d is not expected (or repeated): %w",
			t, k, it.lane, ErrRejected)
	}
	lo, hi := x.p.piece(x.p.recvSeg(t), k)
	if want := (hi - lo) * bytesPerValue(x.r.enc); it.msg.size != want {
		return 0, 0, fmt.Errorf("chunk of ring step %d piece %d has %d bytes, expected %d: %w",
			t, k, it.msg.size, want, ErrRejected)
	}
	x.seen[t*x.maxP+k] = true
	return t, k, nil
}

// awaitSent waits until piece k of ring step t has been sent.
func (x *exchange) awaitSent(ctx context.Context, t, k int) error {
	for !x.sent[t*x.maxP+k].Load() {
		select {
		case <-x.progress:
		case <-ctx.Done():
			return x.failure(ctx, fmt.Sprintf("send ring step %d piece %d to", t, k), x.r.next(), x.r.nextRank(), nil)
		case <-x.r.done:
			return x.failure(ctx, fmt.Sprintf("send ring step %d piece %d to", t, k), x.r.next(), x.r.nextRank(), ErrBroken)
		}
	}
	return nil
}
