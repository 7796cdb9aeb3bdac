package model

import (
	"context"
	"fmt"
)

// env is what a layer's forward and backward passes share: the mode, the replica reducer and
// the workspace scratch.
type env struct {
	train bool
	red   Reducer
	obs   GradObserver
	ws    *workspace
}

// gradsReady tells the observer, if any, that grads[lo:hi] are final.
func (e *env) gradsReady(lo, hi int) {
	if e.obs != nil {
		e.obs.GradsReady(lo, hi)
	}
}

// layer is one feature block of a network: a sequential block (the small and NIN blocks, a
// ResNet stem) or a ResNet stage. Net.Features counts these.
type layer interface {
	// unitList is every conv+BN unit in state_dict order.
	unitList() []*unit
	// visit calls fn on every unit with its input geometry, in forward order, and returns
	// the block's output geometry.
	visit(in shape, fn func(u *unit, in shape)) shape
	// buffers counts (and, with alloc, allocates) the block's activation buffers in floats.
	buffers(in shape, alloc bool) int
	// recomputed is how many floats each of the workspace's two buffers for recomputed
	// activations (workspace.zs) must hold for this block: 0 when it keeps them all.
	recomputed(in shape) int
	// forward runs the block on x (geometry in) and returns its output and geometry.
	forward(ctx context.Context, e *env, x []float32, in shape) ([]float32, shape, error)
	// backward turns g, the gradient of the last forward's output, into the gradient of its
	// input, using spare as the other ping-pong buffer; it returns the buffer holding the input
	// gradient and the one now free. With first set the input gradient is not needed.
	backward(ctx context.Context, e *env, g, spare []float32, first bool) (dx, free []float32, err error)
}

// unit is one conv(bias=False) -> BatchNorm2d pair, followed by ReLU unless it ends a residual
// block (whose output is then relu(bn(y) + shortcut), written by the block).
type unit struct {
	conv *conv2d
	bn   *bnReLU
	name string // the BN's state_dict prefix, for errors
	glo  int    // the unit's parameters (conv weight, BN weight and bias) are grads[glo:ghi]
	ghi  int
	in   shape     // input geometry of the last forward
	x    []float32 // input of the last forward (the previous layer's output)
	y, z []float32 // conv output and post-activation output (workspace)
}

// newUnit builds a unit from its spec; parameter views are bound later.
func newUnit(s unitSpec) *unit {
	return &unit{conv: newConv2d(s.cin, s.cout, s.k, s.stride, s.pad), bn: newBNReLU(s.cout), name: s.bn}
}

// convBN runs the convolution into y and computes the BatchNorm coefficients (batch statistics
// in training) without applying them.
func (u *unit) convBN(ctx context.Context, e *env, x []float32, in shape) (shape, error) {
	u.x, u.in = x, in
	u.conv.forward(x, in, u.y, e.ws.col)
	sh := u.conv.outShape(in)
	if err := u.bn.prepare(ctx, u.y, sh.rows(), e.train, e.red, e.ws.part); err != nil {
		return sh, fmt.Errorf("%s: %w", u.name, err)
	}
	return sh, nil
}

// forward computes z = relu(bn(conv(x))).
func (u *unit) forward(ctx context.Context, e *env, x []float32, in shape) (shape, error) {
	sh, err := u.convBN(ctx, e, x, in)
	if err != nil {
		return sh, err
	}
	applyBNReLU(u.y, u.z, u.bn.scale, u.bn.shift, sh.rows())
	return sh, nil
}

// backward turns g, the gradient of z, in place into the gradient of y (masked where z was
// clipped), accumulates the parameter gradients and writes the input gradient into dx unless
// dx is nil.
func (u *unit) backward(ctx context.Context, e *env, g, dx []float32) error {
	if err := u.bn.backward(ctx, g, u.y, u.z, u.conv.outShape(u.in).rows(), e.red, e.ws.part); err != nil {
		return fmt.Errorf("%s: %w", u.name, err)
	}
	u.conv.backward(u.x, u.in, g, dx, e.ws.col)
	e.gradsReady(u.glo, u.ghi)
	return nil
}

// block is a list of units with an optional pooling layer at its end.
type block struct {
	units []*unit
	pool  *pool2d
	pin   shape     // pooling input geometry of the last forward
	out   []float32 // pooled output (workspace)
}

// newBlock builds a sequential block from its spec.
func newBlock(s layerSpec) *block {
	b := &block{}
	if s.pool != nil {
		p := *s.pool
		b.pool = &p
	}
	for _, u := range s.units {
		b.units = append(b.units, newUnit(u))
	}
	return b
}

func (b *block) unitList() []*unit { return b.units }

func (b *block) visit(in shape, fn func(*unit, shape)) shape {
	for _, u := range b.units {
		fn(u, in)
		in = u.conv.outShape(in)
	}
	if b.pool != nil {
		in = b.pool.outShape(in)
	}
	return in
}

func (b *block) buffers(in shape, alloc bool) int {
	total := 0
	sh := in
	for _, u := range b.units {
		sh = u.conv.outShape(sh)
		total += 2*sh.size() + 2*partialSize(sh.rows(), sh.C, 1)
		if alloc {
			u.y, u.z = make([]float32, sh.size()), make([]float32, sh.size())
		}
	}
	if b.pool != nil {
		out := b.pool.outShape(sh)
		total += 2 * out.size()
		if alloc {
			b.pool.argmax = nil
			if b.pool.kind == poolMax {
				b.pool.argmax = make([]int32, out.size())
			}
			b.out = make([]float32, out.size())
		}
	}
	return total
}

func (b *block) recomputed(shape) int { return 0 }

func (b *block) forward(ctx context.Context, e *env, x []float32, in shape) ([]float32, shape, error) {
	cur, sh := x, in
	for _, u := range b.units {
		var err error
		if sh, err = u.forward(ctx, e, cur, sh); err != nil {
			return nil, sh, err
		}
		cur = u.z
	}
	if b.pool != nil {
		b.pin = sh
		b.pool.forward(cur, sh, b.out)
		sh, cur = b.pool.outShape(sh), b.out
	}
	return cur, sh, nil
}

func (b *block) backward(ctx context.Context, e *env, g, spare []float32, first bool) ([]float32, []float32, error) {
	if b.pool != nil {
		b.pool.backward(g, b.pin, spare)
		g, spare = spare, g
	}
	for li := len(b.units) - 1; li >= 0; li-- {
		dx := spare
		if first && li == 0 {
			dx = nil
		}
		if err := b.units[li].backward(ctx, e, g, dx); err != nil {
			return nil, nil, err
		}
		g, spare = spare, g
	}
	return g, spare, nil
}
