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
	r.mu.Lock()
	step := r.step
	r.mu.Unlock()
	c := r.submit(ctx, step, buf)
	<-c.done
	return c.err
}

// SetStep sets the training step that AllReduceSum stamps on its messages.
func (r *Ring) SetStep(step uint64) {
	r.mu.Lock()
	r.step = step
	r.mu.Unlock()
}
