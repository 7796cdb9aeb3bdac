package worker

import (
	"context"
	"fmt"
)

// buckets sums one step's gradient bucket by bucket while backward still
// runs (PyTorch DDP's reducer): the buffer is cut from its end into buckets
// of size values (the first bucket, at the buffer's start, takes the rest),
// and each starts its all-reduce on the ring as soon as backward reported
// all of it final. Backward reports ranges in decreasing offsets, so the
// buckets start in order, the same on every member. It is a GradSink.
type buckets struct {
	ctx     context.Context
	ring    Ring
	grads   []float32
	lo      []int // bucket b is grads[lo[b]:hi(b)]; bucket 0 ends the buffer
	left    []int // values of each bucket not yet reported
	started []Waiter
}

// newBuckets cuts grads into buckets of size values for one step.
func newBuckets(ctx context.Context, ring Ring, grads []float32, size int) *buckets {
	b := &buckets{ctx: ctx, ring: ring, grads: grads}
	for hi := len(grads); hi > 0; hi -= size {
		lo := max(0, hi-size)
		b.lo = append(b.lo, lo)
		b.left = append(b.left, hi-lo)
	}
	return b
}

// hi is the end of bucket i.
func (b *buckets) hi(i int) int {
	if i == 0 {
		return len(b.grads)
	}
	return b.lo[i-1]
}

// GradsReady counts grads[lo:hi] as final and starts every bucket, in
// order, that is complete.
func (b *buckets) GradsReady(lo, hi int) {
	for i := range b.lo {
		if n := min(hi, b.hi(i)) - max(lo, b.lo[i]); n > 0 {
			b.left[i] -= n
		}
	}
	for len(b.started) < len(b.lo) && b.left[len(b.started)] <= 0 {
		i := len(b.started)
		b.started = append(b.started, b.ring.Start(b.ctx, b.grads[b.lo[i]:b.hi(i)]))
	}
}

// finish starts the buckets backward did not complete (none, when every
// gradient was reported), then waits for all of them; the first error wins.
func (b *buckets) finish() error {
	for i := len(b.started); i < len(b.lo); i++ {
		b.started = append(b.started, b.ring.Start(b.ctx, b.grads[b.lo[i]:b.hi(i)]))
	}
	return b.wait()
}

// wait waits for the buckets started so far: the ring must be done with
// the gradient buffer before anyone touches it again.
func (b *buckets) wait() error {
	var first error
	for i, w := range b.started {
		if err := w.Wait(); err != nil && first == nil {
			first = fmt.Errorf("gradient bucket %d of %d (values %d..%d): %w", i+1, len(b.lo), b.lo[i], b.hi(i), err)
		}
	}
	return first
}
