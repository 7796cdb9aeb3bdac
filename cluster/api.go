package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// AllReduce replaces buf, on every member, by the element-wise sum (or mean)
// of all members' buf, for training step step. Every member must call the
// ring's collectives in the same order with buffers of the same length.
// It returns within Config.Timeout of the collective's start; on error the
// ring is broken and buf holds partial values.
func (r *Ring) AllReduce(ctx context.Context, step uint64, buf []float32, op Op) error {
	if op != Sum && op != Mean {
		return fmt.Errorf("all-reduce step %d: unknown operation %v", step, op)
	}
	r.SetStep(step)
	c := r.submit(ctx, step, buf, op)
	<-c.done
	return c.err
}

// AllReduceSum sums buf across the members in place, stamped with the step
// last given to SetStep, AllReduce or Start. It satisfies model.Reducer.
func (r *Ring) AllReduceSum(ctx context.Context, buf []float32) error {
	r.mu.Lock()
	step := r.step
	r.mu.Unlock()
	c := r.submit(ctx, step, buf, Sum)
	<-c.done
	return c.err
}

// SetStep sets the training step that AllReduceSum stamps on its messages.
func (r *Ring) SetStep(step uint64) {
	r.mu.Lock()
	r.step = step
	r.mu.Unlock()
}

// Reduction is a set of gradient buckets summed across the ring in the
// background, in the order they are added, so communication overlaps the
// computation that produces the next bucket (as PyTorch DDP's buckets).
type Reduction struct {
	r    *Ring
	ctx  context.Context
	step uint64

	mu     sync.Mutex
	cs     []*collective
	waited bool
}

// Start begins a Reduction for training step step (and sets it as the step
// of AllReduceSum). Other collectives may be called while it is open; they
// are ordered with its buckets by call order.
func (r *Ring) Start(ctx context.Context, step uint64) *Reduction {
	r.SetStep(step)
	return &Reduction{r: r, ctx: ctx, step: step}
}

// errWaited is returned by Add after Wait.
var errWaited = errors.New("bucket added after Wait")

// Add queues the sum of bucket across the ring. The bucket must not be
// touched until Wait returns. An error (the ring stopped, or Wait was
// called) is returned at once and again by Wait.
func (red *Reduction) Add(bucket []float32) error {
	red.mu.Lock()
	defer red.mu.Unlock()
	if red.waited {
		return fmt.Errorf("all-reduce step %d: %w", red.step, errWaited)
	}
	c := red.r.submit(red.ctx, red.step, bucket, Sum)
	red.cs = append(red.cs, c)
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Wait returns when every added bucket is summed, with the first error.
func (red *Reduction) Wait() error {
	red.mu.Lock()
	red.waited = true
	cs := red.cs
	red.mu.Unlock()
	var first error
	for _, c := range cs {
		<-c.done
		if c.err != nil && first == nil {
			first = c.err
		}
	}
	return first
}
