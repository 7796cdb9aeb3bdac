package cluster

import "context"

// AllReduce replaces buf, on every member, by the element-wise sum of all
// members' buf, for training step step. Every member must call the ring's
// collectives in the same order with buffers of the same length. It
// returns within Config.Timeout of the collective's start; on error the
// ring is broken and buf holds partial values.
func (r *Ring) AllReduce(ctx context.Context, step uint64, buf []float32) error {
	r.SetStep(step)
	c := r.submit(ctx, step, buf)
	<-c.done
	return c.err
}

// AllReduceSum sums buf across the members in place, stamped with the step
// last given to SetStep or AllReduce. It satisfies model.Reducer.
func (r *Ring) AllReduceSum(ctx context.Context, buf []float32) error {
	return r.Start(ctx, buf).Wait()
}

// SetStep sets the training step that AllReduceSum stamps on its messages.
func (r *Ring) SetStep(step uint64) {
	r.mu.Lock()
	r.step = step
	r.mu.Unlock()
}

// Pending is an all-reduce started with Start.
type Pending struct{ c *collective }

// Start queues the sum of buf across the members, stamped with the step last
// given to SetStep or AllReduce, and returns at once: the ring sums it in
// the background, after the collectives called before it on this ring. buf
// must not be touched until Wait returns. It is how gradient buckets
// overlap backward; keep them on a ring of their own (Bulk) so that they do
// not delay the small collectives backward itself waits for.
func (r *Ring) Start(ctx context.Context, buf []float32) *Pending {
	r.mu.Lock()
	step := r.step
	r.mu.Unlock()
	return &Pending{c: r.submit(ctx, step, buf)}
}

// Wait returns when the sum is in place, with its error (the ring's, as
// AllReduce returns it).
func (p *Pending) Wait() error {
	<-p.c.done
	return p.c.err
}
