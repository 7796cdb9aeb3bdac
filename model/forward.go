package model

import (
	"context"
	"fmt"
)

// workspaceTarget (in floats) is how large a workspace may grow by keeping im2col matrices from
// forward for backward, so that backward need not rebuild them: after the activations and
// scratch are counted, the rest of the target is given to layers first-fit in forward order.
// 1.1 GiB caches all of small and nin4's layers except its 315 MiB 5x5x96 one at batch 128,
// keeping nin4 near 1.1 GiB peak RSS. It depends on the batch geometry only, never on the thread
// count, and results are bit-identical with or without the cache.
var workspaceTarget = 1100 << 20 / 4

// workspace holds the activation and scratch buffers for batches of up to cap images, reused
// across steps so that training allocates nothing per step.
type workspace struct {
	cap                          int
	input                        []float32 // the batch, channels-last
	feat, dfeat, logits, dlogits []float32
	gA, gB                       []float32 // ping-pong gradient buffers
	col                          []float32 // im2col scratch
	part                         []float32 // reduction scratch
	batch                        int       // batch of the last full forward
	last                         shape     // geometry of the last block's output
	ready                        bool      // activations of a full forward are in place
}

// ensure returns a workspace for batch images, allocating the layer buffers when it grows.
func (n *Net) ensure(batch int) *workspace {
	if n.ws != nil && batch <= n.ws.cap {
		return n.ws
	}
	n.ws = nil // let the old buffers go before allocating the new ones
	S := n.cfg.InputSize
	in := shape{N: batch, H: S, W: S, C: 3}
	budget := max(0, workspaceTarget-n.layerBuffers(in, false))
	ws := &workspace{cap: batch, input: make([]float32, in.size())}
	var grad, col, part int
	sh := in
	for _, b := range n.blocks {
		for _, u := range b.units {
			col = max(col, u.conv.colSize(sh))
			grad = max(grad, sh.size())
			u.conv.cache = nil
			if cs := u.conv.cacheSize(sh); cs > 0 && cs <= budget {
				u.conv.cache, budget = make([]float32, cs), budget-cs
			}
			sh = u.conv.outShape(sh)
			part = max(part, partialSize(sh.rows(), sh.C, 2))
			grad = max(grad, sh.size())
		}
		if b.pool != nil {
			sh = b.pool.outShape(sh)
		}
	}
	n.layerBuffers(in, true)
	c := n.cfg.Classes
	ws.feat, ws.dfeat = make([]float32, batch*n.cfg.Width), make([]float32, batch*n.cfg.Width)
	ws.logits, ws.dlogits = make([]float32, batch*c), make([]float32, batch*c)
	ws.gA, ws.gB = make([]float32, grad), make([]float32, grad)
	ws.col, ws.part = make([]float32, col), make([]float32, part)
	n.ws = ws
	return ws
}

// layerBuffers counts (and, with alloc, allocates) the per-layer activation buffers for input
// geometry in, plus the shared gradient and scratch buffers, in floats.
func (n *Net) layerBuffers(in shape, alloc bool) int {
	total, grad, col := in.size(), in.size(), 0
	sh := in
	for _, b := range n.blocks {
		for _, u := range b.units {
			col = max(col, u.conv.colSize(sh))
			sh = u.conv.outShape(sh)
			total += 2*sh.size() + 2*partialSize(sh.rows(), sh.C, 1)
			grad = max(grad, sh.size())
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
			sh = out
		}
	}
	return total + 2*grad + col
}

// Forward runs the network on x (NCHW float32, batch x 3 x InputSize x InputSize) and returns
// the logits (batch x classes), valid until the next call. In training mode BatchNorm uses batch
// statistics (synchronised through the Reducer if set) and updates its running statistics.
func (n *Net) Forward(ctx context.Context, x []float32, batch int) ([]float32, error) {
	out, sh, err := n.forwardBlocks(ctx, x, batch, len(n.blocks))
	if err != nil {
		return nil, err
	}
	ws := n.ws
	n.head.forward(out, sh, ws.feat, ws.logits)
	ws.batch, ws.last, ws.ready = batch, sh, true
	return ws.logits[:batch*n.cfg.Classes], nil
}

// forwardBlocks runs blocks [0, upto) and returns the last output and its geometry.
func (n *Net) forwardBlocks(ctx context.Context, x []float32, batch, upto int) ([]float32, shape, error) {
	S := n.cfg.InputSize
	if batch < 1 || len(x) != batch*3*S*S {
		return nil, shape{}, fmt.Errorf("%w: forward: input has %d values, want batch %d x 3 x %d x %d",
			ErrShape, len(x), batch, S, S)
	}
	ws := n.ensure(batch)
	ws.ready = false
	sh := shape{N: batch, H: S, W: S, C: 3}
	nchwToNHWC(x, ws.input, sh)
	cur := ws.input
	for bi, b := range n.blocks[:upto] {
		if err := ctx.Err(); err != nil {
			return nil, shape{}, fmt.Errorf("forward block %d: %w", bi, err)
		}
		for li, u := range b.units {
			u.x, u.in = cur, sh
			u.conv.forward(cur, sh, u.y, ws.col)
			sh = u.conv.outShape(sh)
			if err := u.bn.forward(ctx, u.y, u.z, sh.rows(), n.train, n.red, ws.part); err != nil {
				return nil, shape{}, fmt.Errorf("forward block %d layer %d: %w", bi, li, err)
			}
			cur = u.z
		}
		if b.pool != nil {
			b.pin = sh
			b.pool.forward(cur, sh, b.out)
			sh, cur = b.pool.outShape(sh), b.out
		}
	}
	return cur, sh, nil
}

// Backward back-propagates dlogits (batch x classes, the gradient of the loss with respect to
// the logits of the last Forward) and accumulates every parameter gradient into Grads().
func (n *Net) Backward(ctx context.Context, dlogits []float32) error {
	ws := n.ws
	if ws == nil || !ws.ready {
		return fmt.Errorf("backward: %w", ErrNoForward)
	}
	if len(dlogits) != ws.batch*n.cfg.Classes {
		return fmt.Errorf("%w: backward: %d logit gradients, want %d x %d", ErrShape, len(dlogits), ws.batch, n.cfg.Classes)
	}
	g, other := ws.gA, ws.gB
	n.head.backward(dlogits, ws.feat, ws.last, ws.dfeat, g)
	for bi := len(n.blocks) - 1; bi >= 0; bi-- {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("backward block %d: %w", bi, err)
		}
		b := n.blocks[bi]
		if b.pool != nil {
			b.pool.backward(g, b.pin, other)
			g, other = other, g
		}
		for li := len(b.units) - 1; li >= 0; li-- {
			u := b.units[li]
			if err := u.bn.backward(ctx, g, u.y, u.z, u.conv.outShape(u.in).rows(), n.red, ws.part); err != nil {
				return fmt.Errorf("backward block %d layer %d: %w", bi, li, err)
			}
			var dx []float32
			if bi > 0 || li > 0 {
				dx = other
			}
			u.conv.backward(u.x, u.in, g, dx, ws.col)
			g, other = other, g
		}
	}
	return nil
}

// TrainStep runs Forward, the mean softmax cross-entropy against labels (one per image) and
// Backward, accumulating into Grads() the loss gradient multiplied by scale (use
// localBatch/globalBatch so that the sum over replicas is the gradient of the global mean loss;
// 1 for a single process). Call ZeroGrads before. It returns the local mean loss and the number
// of correctly classified images.
func (n *Net) TrainStep(ctx context.Context, x []float32, labels []int, scale float32) (float64, int, error) {
	logits, err := n.Forward(ctx, x, len(labels))
	if err != nil {
		return 0, 0, fmt.Errorf("train step: %w", err)
	}
	dl := n.ws.dlogits[:len(logits)]
	loss, correct, err := SoftmaxCrossEntropy(logits, labels, n.cfg.Classes, scale, dl)
	if err != nil {
		return 0, 0, fmt.Errorf("train step: %w", err)
	}
	if err := n.Backward(ctx, dl); err != nil {
		return 0, 0, fmt.Errorf("train step: %w", err)
	}
	return loss, correct, nil
}

// Features runs blocks 1..upto (1-based, like rotnet.py's forward(x, upto)) and returns a copy
// of that block's output in NCHW order with its shape [batch, C, H, W].
func (n *Net) Features(ctx context.Context, x []float32, batch, upto int) ([]float32, []int, error) {
	if upto < 1 || upto > len(n.blocks) {
		return nil, nil, fmt.Errorf("%w: features: upto %d out of range 1..%d", ErrShape, upto, len(n.blocks))
	}
	out, sh, err := n.forwardBlocks(ctx, x, batch, upto)
	if err != nil {
		return nil, nil, fmt.Errorf("features: %w", err)
	}
	res := make([]float32, sh.size())
	nhwcToNCHW(out, res, sh)
	return res, []int{sh.N, sh.C, sh.H, sh.W}, nil
}
