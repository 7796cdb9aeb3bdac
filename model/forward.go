package model

import (
	"context"
	"fmt"
	"sync/atomic"
)

// workspaceTarget (in floats) is how large a workspace may grow by keeping im2col matrices from
// forward for backward, so that backward need not rebuild them: after the activations and
// scratch are counted, the rest of the target is given to layers first-fit in forward order.
// 1.1 GiB caches all of small and nin4's layers except its 315 MiB 5x5x96 one at batch 128,
// keeping nin4 near 1.1 GiB peak RSS. It depends on the batch geometry only, never on the thread
// count, and results are bit-identical with or without the cache.
var workspaceTarget = 1100 << 20 / 4

// resNetWorkspaceTarget is workspaceTarget for the ResNets: 0, no im2col cache. Their 3x3 layers
// have 64-512 output channels, so rebuilding a layer's matrix costs little next to its GEMMs
// (BenchmarkIm2colCache: resnet18-small at 32 px as fast without the cache, resnet18 at 64 px
// 6% slower), while the cache was most of their peak RSS above PyTorch's (610 MB of 1178 for
// resnet18 at 64 px, batch 128).
var resNetWorkspaceTarget = 0

// im2colCap caps the im2col cache of the workspaces built after SetIm2colCache, in floats
// (negative: no cap).
var im2colCap atomic.Int64

func init() { im2colCap.Store(-1) }

// DefaultIm2colCache is the im2col cache a plain network's workspace may keep without a cap, in
// bytes (the ResNets keep none).
const DefaultIm2colCache = 1100 << 20

// SetIm2colCache caps, in bytes, how much a network's workspace may grow by keeping im2col
// matrices from forward for backward (at most DefaultIm2colCache; negative: no cap), for the
// workspaces built after the call, and returns the previous cap. Results never depend on it: with
// less, backward rebuilds the matrices (slower) and the workspace is smaller (small at 64 px,
// batch 128: 1.14 GB with the default, 0.70 GB with none).
func SetIm2colCache(bytes int64) int64 {
	c := int64(-1)
	if bytes >= 0 {
		c = bytes / 4
	}
	prev := im2colCap.Swap(c)
	if prev < 0 {
		return prev
	}
	return prev * 4
}

// cacheTarget is the workspace target of the network's im2col cache.
func (n *Net) cacheTarget() int {
	t := workspaceTarget
	if n.cfg.IsResNet() {
		t = resNetWorkspaceTarget
	}
	if c := im2colCap.Load(); c >= 0 {
		t = min(t, int(c))
	}
	return t
}

// workspace holds the activation and scratch buffers for batches of up to cap images, reused
// across steps so that training allocates nothing per step.
type workspace struct {
	cap                          int
	input                        []float32 // the batch, channels-last
	feat, dfeat, logits, dlogits []float32
	gA, gB                       []float32    // ping-pong gradient buffers
	gC                           []float32    // a residual block's shortcut gradient (ResNets only)
	col                          []float32    // im2col scratch
	zs                           [2][]float32 // activations recomputed in backward (ResNets' inner units)
	part                         []float32    // reduction scratch
	batch                        int          // batch of the last full forward
	last                         shape        // geometry of the last block's output
	ready                        bool         // activations of a full forward are in place
}

// ensure returns a workspace for batch images, allocating the layer buffers when it grows.
func (n *Net) ensure(batch int) *workspace {
	if n.ws != nil && batch <= n.ws.cap {
		return n.ws
	}
	n.ws = nil // let the old buffers go before allocating the new ones
	in := shape{N: batch, H: n.cfg.InputSize, W: n.cfg.InputSize, C: 3}
	n.planCaches(in, true)
	ws := &workspace{cap: batch, input: make([]float32, in.size())}
	n.layerBuffers(in, true)
	grad, col := n.scratch(in)
	c := n.cfg.Classes
	ws.feat, ws.dfeat = make([]float32, batch*n.cfg.Width), make([]float32, batch*n.cfg.Width)
	ws.logits, ws.dlogits = make([]float32, batch*c), make([]float32, batch*c)
	ws.gA, ws.gB = make([]float32, grad), make([]float32, grad)
	if n.cfg.IsResNet() {
		ws.gC = make([]float32, grad)
	}
	ws.col, ws.part = make([]float32, col), make([]float32, n.partSize(in))
	z := n.recomputed(in)
	ws.zs = [2][]float32{make([]float32, z), make([]float32, z)}
	n.ws = ws
	return ws
}

// WorkspaceBytes is what the first Forward of a batch of batch images at the net's input size
// allocates (and training then reuses), in bytes: the activations, gradients, scratch, im2col
// caches and the convolutions' reordered weights. The parameters, their gradients and state
// are apart (NumParams, len(State)). For estimates before a job runs: the count is the
// allocation's, without allocating.
func (n *Net) WorkspaceBytes(batch int) int64 {
	in := shape{N: batch, H: n.cfg.InputSize, W: n.cfg.InputSize, C: 3}
	floats := n.layerBuffers(in, false) + n.planCaches(in, false) + n.partSize(in) +
		2*batch*n.cfg.Width + 2*batch*n.cfg.Classes
	for _, u := range n.units {
		floats += u.conv.reorderSize()
	}
	return 4 * int64(floats)
}

// planCaches gives layers (with alloc: allocates) im2col caches first-fit in forward order
// within the cache target left after the layer buffers, and returns their total in floats.
func (n *Net) planCaches(in shape, alloc bool) int {
	budget := max(0, n.cacheTarget()-n.layerBuffers(in, false))
	total := 0
	n.visitUnits(in, func(u *unit, in shape) {
		if alloc {
			u.conv.cache = nil
		}
		if cs := u.conv.cacheSize(in); cs > 0 && cs <= budget {
			budget, total = budget-cs, total+cs
			if alloc {
				u.conv.cache = make([]float32, cs)
			}
		}
	})
	return total
}

// scratch is the size of each gradient buffer (the largest unit input or output) and of the
// im2col scratch (the largest unit's matrix) for input geometry in, in floats.
func (n *Net) scratch(in shape) (grad, col int) {
	grad = in.size()
	n.visitUnits(in, func(u *unit, in shape) {
		col = max(col, u.conv.colSize(in))
		grad = max(grad, in.size(), u.conv.outShape(in).size())
	})
	return grad, col
}

// partSize is the size of the reduction scratch: the largest unit's BatchNorm partial sums.
func (n *Net) partSize(in shape) int {
	part := 0
	n.visitUnits(in, func(u *unit, in shape) {
		out := u.conv.outShape(in)
		part = max(part, partialSize(out.rows(), out.C, 2))
	})
	return part
}

// visitUnits calls fn for every conv+BN unit in forward order with its input geometry.
func (n *Net) visitUnits(in shape, fn func(u *unit, in shape)) {
	sh := in
	for _, l := range n.body {
		sh = l.visit(sh, fn)
	}
}

// layerBuffers counts (and, with alloc, allocates) the per-layer activation buffers for input
// geometry in, plus the input and the shared gradient and scratch buffers, in floats.
func (n *Net) layerBuffers(in shape, alloc bool) int {
	total := in.size()
	sh := in
	for _, l := range n.body {
		total += l.buffers(sh, alloc)
		sh = l.visit(sh, func(*unit, shape) {})
	}
	grad, col := n.scratch(in)
	grads := 2
	if n.cfg.IsResNet() {
		grads = 3
	}
	return total + grads*grad + col + 2*n.recomputed(in)
}

// recomputed is the size of each of the workspace's two buffers for recomputed activations.
func (n *Net) recomputed(in shape) int {
	most, sh := 0, in
	for _, l := range n.body {
		most = max(most, l.recomputed(sh))
		sh = l.visit(sh, func(*unit, shape) {})
	}
	return most
}

// env is the pass environment of the net's current mode and workspace.
func (n *Net) env() *env { return &env{train: n.train, red: n.red, obs: n.obs, ws: n.ws} }

// Forward runs the network on x (NCHW float32, batch x 3 x InputSize x InputSize) and returns
// the logits (batch x classes), valid until the next call. In training mode BatchNorm uses batch
// statistics (synchronised through the Reducer if set) and updates its running statistics.
func (n *Net) Forward(ctx context.Context, x []float32, batch int) ([]float32, error) {
	out, sh, err := n.forwardBlocks(ctx, x, batch, len(n.body), nil)
	if err != nil {
		return nil, err
	}
	ws := n.ws
	n.head.forward(out, sh, ws.feat, ws.logits)
	ws.batch, ws.last, ws.ready = batch, sh, true
	return ws.logits[:batch*n.cfg.Classes], nil
}

// forwardBlocks runs blocks [0, upto) and returns the last output and its geometry; each, if
// set, sees every block's output before the next block runs.
func (n *Net) forwardBlocks(ctx context.Context, x []float32, batch, upto int,
	each func(bi int, out []float32, sh shape)) ([]float32, shape, error) {
	S := n.cfg.InputSize
	if batch < 1 || len(x) != batch*3*S*S {
		return nil, shape{}, fmt.Errorf("%w: forward: input has %d values, want batch %d x 3 x %d x %d",
			ErrShape, len(x), batch, S, S)
	}
	ws := n.ensure(batch)
	ws.ready = false
	sh := shape{N: batch, H: S, W: S, C: 3}
	nchwToNHWC(x, ws.input, sh)
	cur, e := ws.input, n.env()
	for bi, l := range n.body[:upto] {
		if err := ctx.Err(); err != nil {
			return nil, shape{}, fmt.Errorf("forward block %d: %w", bi, err)
		}
		var err error
		if cur, sh, err = l.forward(ctx, e, cur, sh); err != nil {
			return nil, shape{}, fmt.Errorf("forward block %d: %w", bi, err)
		}
		if each != nil {
			each(bi, cur, sh)
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
	g, spare, e := ws.gA, ws.gB, n.env()
	n.head.backward(dlogits, ws.feat, ws.last, ws.dfeat, g)
	e.gradsReady(n.headLo, len(n.grads))
	for bi := len(n.body) - 1; bi >= 0; bi-- {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("backward block %d: %w", bi, err)
		}
		var err error
		if g, spare, err = n.body[bi].backward(ctx, e, g, spare, bi == 0); err != nil {
			return fmt.Errorf("backward block %d: %w", bi, err)
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
	return n.trainWith(ctx, x, len(labels), "train step", func(logits, dl []float32) (float64, int, error) {
		return SoftmaxCrossEntropy(logits, labels, n.cfg.Classes, scale, dl)
	})
}

// trainWith runs Forward on rows images, loss (which writes the logits'
// gradient into dl) and Backward; op names the step in errors.
func (n *Net) trainWith(ctx context.Context, x []float32, rows int, op string,
	loss func(logits, dl []float32) (float64, int, error)) (float64, int, error) {
	logits, err := n.Forward(ctx, x, rows)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	dl := n.ws.dlogits[:len(logits)]
	l, correct, err := loss(logits, dl)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	if err := n.Backward(ctx, dl); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	return l, correct, nil
}

// TrainStepSoft is TrainStep against target distributions (SoftCrossEntropy; classes values
// per image) instead of labels: a student learning a teacher's probabilities. It returns the
// mean loss and the number of images whose arg-max agrees with the target's.
func (n *Net) TrainStepSoft(ctx context.Context, x, targets []float32, scale float32) (float64, int, error) {
	return n.trainWith(ctx, x, len(targets)/max(n.cfg.Classes, 1), "soft train step", func(logits, dl []float32) (float64, int, error) {
		return SoftCrossEntropy(logits, targets, n.cfg.Classes, scale, dl)
	})
}

// Features runs blocks 1..upto (1-based, like rotnet.py's forward(x, upto)) and returns a copy
// of that block's output in NCHW order with its shape [batch, C, H, W].
func (n *Net) Features(ctx context.Context, x []float32, batch, upto int) ([]float32, []int, error) {
	if upto < 1 || upto > len(n.body) {
		return nil, nil, fmt.Errorf("%w: features: upto %d out of range 1..%d", ErrShape, upto, len(n.body))
	}
	out, sh, err := n.forwardBlocks(ctx, x, batch, upto, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("features: %w", err)
	}
	res := make([]float32, sh.size())
	nhwcToNCHW(out, res, sh)
	return res, []int{sh.N, sh.C, sh.H, sh.W}, nil
}

// GridFeatures is PooledFeatures with each block's output average-pooled to
// the largest g x g grid whose channels x g x g values fit in maxDims
// (AdaptiveAvgPool2d; VISSL pools conv blocks to about 9k values for its
// linear probes), per image channel-major; g is 1 (the global average) when
// even 2 x 2 does not fit. It also returns each block's g.
func (n *Net) GridFeatures(ctx context.Context, x []float32, batch, maxDims int) ([][]float32, []int, error) {
	feats, grids := make([][]float32, len(n.body)), make([]int, len(n.body))
	_, _, err := n.forwardBlocks(ctx, x, batch, len(n.body), func(bi int, out []float32, sh shape) {
		g := gridSide(sh, maxDims)
		feats[bi], grids[bi] = make([]float32, sh.N*sh.C*g*g), g
		adaptiveAvgPool(out, sh, g, feats[bi])
	})
	if err != nil {
		return nil, nil, fmt.Errorf("grid features: %w", err)
	}
	return feats, grids, nil
}

// PooledFeatures runs every block once on x and returns, per block, the global average pool of
// its output: batch x channels values, image-major (float64 accumulation). These are the
// features that linear probes and kNN read (VISSL's and solo-learn's per-block protocol). The
// mode is the net's own: call SetTraining(false) for frozen features.
func (n *Net) PooledFeatures(ctx context.Context, x []float32, batch int) ([][]float32, error) {
	feats := make([][]float32, len(n.body))
	_, _, err := n.forwardBlocks(ctx, x, batch, len(n.body), func(bi int, out []float32, sh shape) {
		feats[bi] = make([]float32, sh.N*sh.C)
		globalAvgPool(out, sh, feats[bi])
	})
	if err != nil {
		return nil, fmt.Errorf("pooled features: %w", err)
	}
	return feats, nil
}

// FeatureDims is the number of pooled features of each block (its output channels), what
// PooledFeatures returns per image.
func (n *Net) FeatureDims() []int {
	sh := shape{N: 1, H: n.cfg.InputSize, W: n.cfg.InputSize, C: 3}
	dims := make([]int, 0, len(n.body))
	for _, l := range n.body {
		sh = l.visit(sh, func(*unit, shape) {})
		dims = append(dims, sh.C)
	}
	return dims
}
