package model

import "context"

// resBlock is one residual block: out = relu(bn_last(conv_last(...)) + shortcut(x)), the
// shortcut being x itself or bn(conv1x1(x)). The last main-path unit and the shortcut unit both
// have out as their z: out > 0 is the ReLU mask of both branches, so their backward passes are
// the plain unit's. The inner units' z = relu(bn(y)) are not kept: forward writes them into the
// workspace's two shared buffers (alternating), and backward recomputes each from its y, once,
// right before the next unit's backward needs it as its input.
type resBlock struct {
	units []*unit
	down  *unit
	in    shape
	x     []float32
	out   []float32 // block output (workspace)
}

// newResBlock builds a residual block from its spec.
func newResBlock(s resSpec) *resBlock {
	r := &resBlock{}
	for _, u := range s.units {
		r.units = append(r.units, newUnit(u))
	}
	if s.down != nil {
		r.down = newUnit(*s.down)
	}
	return r
}

func (r *resBlock) unitList() []*unit {
	if r.down == nil {
		return r.units
	}
	return append(append([]*unit{}, r.units...), r.down)
}

func (r *resBlock) visit(in shape, fn func(*unit, shape)) shape {
	sh := in
	for _, u := range r.units {
		fn(u, sh)
		sh = u.conv.outShape(sh)
	}
	if r.down != nil {
		fn(r.down, in)
	}
	return sh
}

func (r *resBlock) buffers(in shape, alloc bool) int {
	total, sh := 0, in
	last := len(r.units) - 1
	for i, u := range r.units {
		sh = u.conv.outShape(sh)
		total += sh.size() + 2*partialSize(sh.rows(), sh.C, 1)
		if alloc {
			u.y = make([]float32, sh.size())
			if i < last {
				u.z = nil // a slice of workspace.zs from each forward
			}
		}
	}
	total += sh.size()
	if alloc {
		r.out = make([]float32, sh.size())
		r.units[last].z = r.out
	}
	if r.down != nil {
		total += sh.size() + 2*partialSize(sh.rows(), sh.C, 1)
		if alloc {
			r.down.y, r.down.z = make([]float32, sh.size()), r.out
		}
	}
	return total
}

// recomputed is the largest inner unit output: the inner z live in workspace.zs.
func (r *resBlock) recomputed(in shape) int {
	most, sh := 0, in
	for _, u := range r.units[:len(r.units)-1] {
		sh = u.conv.outShape(sh)
		most = max(most, sh.size())
	}
	return most
}

func (r *resBlock) forward(ctx context.Context, e *env, x []float32, in shape) ([]float32, shape, error) {
	r.x, r.in = x, in
	cur, sh := x, in
	last := r.units[len(r.units)-1]
	for i, u := range r.units[:len(r.units)-1] {
		u.z = e.ws.zs[i%2][:u.conv.outShape(sh).size()]
		var err error
		if sh, err = u.forward(ctx, e, cur, sh); err != nil {
			return nil, sh, err
		}
		cur = u.z
	}
	sh, err := last.convBN(ctx, e, cur, sh)
	if err != nil {
		return nil, sh, err
	}
	m := sh.rows()
	short := x
	if r.down != nil {
		if _, err := r.down.convBN(ctx, e, x, in); err != nil {
			return nil, sh, err
		}
		applyBN(r.down.y, r.out, r.down.bn.scale, r.down.bn.shift, m)
		short = r.out
	}
	applyBNAddReLU(last.y, short, r.out, last.bn.scale, last.bn.shift, m)
	return r.out, sh, nil
}

// backward masks g by out > 0 (the gradient of both branches' sum), runs the shortcut's
// backward into the workspace's third buffer, then the main path ping-ponging between g and
// spare, and adds the two input gradients.
func (r *resBlock) backward(ctx context.Context, e *env, g, spare []float32, first bool) ([]float32, []float32, error) {
	size := len(r.out)
	maskReLU(g[:size], r.out)
	short := e.ws.gC[:r.in.size()]
	if r.down != nil {
		copy(spare[:size], g[:size])
		if err := r.down.backward(ctx, e, spare, short); err != nil {
			return nil, nil, err
		}
	} else {
		copy(short, g[:size])
	}
	for i := len(r.units) - 1; i >= 0; i-- {
		dx := spare
		if first && i == 0 {
			dx = nil
		}
		if i > 0 { // unit i's input is z of unit i-1: recompute it (its y and BN are unchanged)
			p := r.units[i-1]
			applyBNReLU(p.y, p.z, p.bn.scale, p.bn.shift, p.conv.outShape(p.in).rows())
		}
		if err := r.units[i].backward(ctx, e, g, dx); err != nil {
			return nil, nil, err
		}
		g, spare = spare, g
	}
	if !first {
		addInto(g[:len(short)], short)
	}
	return g, spare, nil
}

// stage is a chain of residual blocks: one feature block of a ResNet.
type stage struct{ blocks []*resBlock }

// newStage builds a ResNet stage from its spec.
func newStage(s layerSpec) *stage {
	st := &stage{}
	for _, r := range s.res {
		st.blocks = append(st.blocks, newResBlock(r))
	}
	return st
}

func (s *stage) unitList() []*unit {
	var us []*unit
	for _, b := range s.blocks {
		us = append(us, b.unitList()...)
	}
	return us
}

func (s *stage) visit(in shape, fn func(*unit, shape)) shape {
	for _, b := range s.blocks {
		in = b.visit(in, fn)
	}
	return in
}

func (s *stage) buffers(in shape, alloc bool) int {
	total := 0
	for _, b := range s.blocks {
		total += b.buffers(in, alloc)
		in = b.visit(in, func(*unit, shape) {})
	}
	return total
}

func (s *stage) recomputed(in shape) int {
	most := 0
	for _, b := range s.blocks {
		most = max(most, b.recomputed(in))
		in = b.visit(in, func(*unit, shape) {})
	}
	return most
}

func (s *stage) forward(ctx context.Context, e *env, x []float32, in shape) ([]float32, shape, error) {
	for _, b := range s.blocks {
		var err error
		if x, in, err = b.forward(ctx, e, x, in); err != nil {
			return nil, in, err
		}
	}
	return x, in, nil
}

func (s *stage) backward(ctx context.Context, e *env, g, spare []float32, first bool) ([]float32, []float32, error) {
	for i := len(s.blocks) - 1; i >= 0; i-- {
		var err error
		if g, spare, err = s.blocks[i].backward(ctx, e, g, spare, first && i == 0); err != nil {
			return nil, nil, err
		}
	}
	return g, spare, nil
}

// newLayer builds the block a spec describes.
func newLayer(s layerSpec) layer {
	if s.res != nil {
		return newStage(s)
	}
	return newBlock(s)
}
