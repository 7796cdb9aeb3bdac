package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// fdEps and fdTol are the default central-difference step and the accepted error relative to
// the largest analytic gradient of the tensor (float32 forward passes, float64 objectives).
const (
	fdEps = 1e-2
	fdTol = 2e-2
)

// randSlice returns n values from N(0, 1) drawn from a fixed stream.
func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// dot is sum(a*b) in float64.
func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// fdCheck compares grad with central differences of f over up to samples elements of x.
func fdCheck(t *testing.T, name string, x, grad []float32, samples int, f func() float64) {
	t.Helper()
	fdCheckEps(t, name, x, grad, samples, fdEps, f)
}

// fdCheckEps is fdCheck with step eps.
func fdCheckEps(t *testing.T, name string, x, grad []float32, samples int, eps float32, f func() float64) {
	t.Helper()
	fdCheckSteps(t, name, x, grad, samples, []float32{eps}, f)
}

// fdCheckKinks is fdCheck for functions with many ReLU kinks: each element's error is the
// smallest over steps from 1e-2 down to 1e-4, so a kink inside one step's reach (which moves that
// difference, not the gradient) is not taken for a wrong gradient, while a wrong gradient
// disagrees at every step.
func fdCheckKinks(t *testing.T, name string, x, grad []float32, samples int, f func() float64) {
	t.Helper()
	fdCheckSteps(t, name, x, grad, samples, []float32{1e-2, 3e-3, 1e-3, 3e-4, 1e-4}, f)
}

// fdCheckSteps compares grad with central differences of f over up to samples elements of x,
// each element's error being the smallest over the steps.
func fdCheckSteps(t *testing.T, name string, x, grad []float32, samples int, steps []float32, f func() float64) {
	t.Helper()
	var scale float64
	for _, g := range grad {
		scale = max(scale, math.Abs(float64(g)))
	}
	if scale == 0 {
		t.Fatalf("%s: all analytic gradients are zero", name)
	}
	rng := rand.New(rand.NewPCG(uint64(len(x)), 9))
	worst := 0.0
	for range min(samples, len(x)) {
		i := rng.IntN(len(x))
		best := math.Inf(1)
		for _, eps := range steps {
			old := x[i]
			x[i] = old + eps
			fp := f()
			x[i] = old - eps
			fm := f()
			x[i] = old
			num := (fp - fm) / float64((old+eps)-(old-eps))
			best = min(best, math.Abs(num-float64(grad[i]))/scale)
		}
		worst = max(worst, best)
	}
	if worst > fdTol {
		t.Errorf("%s: finite-difference error %.3g of max gradient %.3g > %g", name, worst, scale, fdTol)
	}
}

func TestConvGradients(t *testing.T) {
	cases := []struct{ cin, cout, k, stride, pad, h int }{
		{3, 4, 5, 1, 2, 7}, {4, 5, 1, 1, 0, 5}, {3, 2, 3, 2, 1, 7}, {2, 3, 3, 1, 0, 6}, {2, 2, 1, 2, 0, 5},
		{4, 4, 3, 1, 1, 6}, {5, 3, 5, 1, 2, 5}, // transposed-convolution input gradient
		{3, 4, 7, 2, 3, 9}, {3, 4, 7, 2, 3, 12}, // a ResNet's ImageNet stem
	}
	for _, c := range cases {
		rng := rand.New(rand.NewPCG(1, uint64(c.k)))
		cv := newConv2d(c.cin, c.cout, c.k, c.stride, c.pad)
		cv.w, cv.dw = randSlice(rng, cv.weights()), make([]float32, cv.weights())
		if (cv.flip != nil) != (c.stride == 1 && 2*c.pad == c.k-1 && c.k > 1 && c.cout <= c.cin) {
			t.Fatalf("%+v: transposed path %v", c, cv.flip != nil)
		}
		in := shape{N: 2, H: c.h, W: c.h, C: c.cin}
		out := cv.outShape(in)
		x, r := randSlice(rng, in.size()), randSlice(rng, out.size())
		col := make([]float32, cv.colSize(in)+1)
		y := make([]float32, out.size())
		f := func() float64 { cv.forward(x, in, y, col); return dot(y, r) }
		f()
		dx := make([]float32, in.size())
		cv.backward(x, in, append([]float32(nil), r...), dx, col)
		fdCheck(t, "conv dx", x, dx, 40, f)
		fdCheck(t, "conv dw", cv.w, cv.dw, 40, f)
	}
}

// newTestBN returns a bnReLU with random affine parameters and fresh state.
func newTestBN(rng *rand.Rand, c int) *bnReLU {
	b := newBNReLU(c)
	b.gamma, b.beta = randSlice(rng, c), randSlice(rng, c)
	b.dgamma, b.dbeta = make([]float32, c), make([]float32, c)
	b.rmean, b.rvar, b.nbt = randSlice(rng, c), make([]float32, c), make([]float32, 1)
	for i := range b.rvar {
		b.rvar[i] = 0.5 + rng.Float32()
	}
	return b
}

func TestBNReLUGradients(t *testing.T) {
	for _, train := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(2, 3))
		const m, c = 50, 6
		b := newTestBN(rng, c)
		y, r := randSlice(rng, m*c), randSlice(rng, m*c)
		z := make([]float32, m*c)
		part := make([]float32, partialSize(m, c, 2))
		ctx := context.Background()
		f := func() float64 {
			if err := b.forward(ctx, y, z, m, train, nil, part); err != nil {
				t.Fatal(err)
			}
			return dot(z, r)
		}
		f()
		g := append([]float32(nil), r...)
		if err := b.backward(ctx, g, y, z, m, nil, part); err != nil {
			t.Fatal(err)
		}
		fdCheck(t, "bn dx", y, g, 60, f)
		fdCheck(t, "bn dgamma", b.gamma, b.dgamma, c, f)
		fdCheck(t, "bn dbeta", b.beta, b.dbeta, c, f)
	}
}

func TestPoolGradients(t *testing.T) {
	cases := []pool2d{
		{kind: poolMax, k: 3, stride: 2, pad: 1}, {kind: poolMax, k: 2, stride: 2},
		{kind: poolAvg, k: 3, stride: 2, pad: 1}, {kind: poolAvg, k: 2, stride: 2},
	}
	for _, h := range []int{7, 8} {
		for _, p := range cases {
			rng := rand.New(rand.NewPCG(4, uint64(h)))
			in := shape{N: 2, H: h, W: h, C: 3}
			out := p.outShape(in)
			p.argmax = make([]int32, out.size())
			x, r := randSlice(rng, in.size()), randSlice(rng, out.size())
			y := make([]float32, out.size())
			f := func() float64 { p.forward(x, in, y); return dot(y, r) }
			f()
			dx := make([]float32, in.size())
			p.backward(r, in, dx)
			fdCheckEps(t, "pool dx", x, dx, 60, 1e-3, f)
		}
	}
}

func TestHeadAndLossGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	in := shape{N: 3, H: 2, W: 3, C: 4}
	h := &head{cin: 4, classes: 5}
	h.w, h.b = randSlice(rng, 20), randSlice(rng, 5)
	h.dw, h.db = make([]float32, 20), make([]float32, 5)
	x := randSlice(rng, in.size())
	labels := []int{4, 0, 2}
	feat, logits, dl := make([]float32, 12), make([]float32, 15), make([]float32, 15)
	f := func() float64 {
		h.forward(x, in, feat, logits)
		loss, _, err := SoftmaxCrossEntropy(logits, labels, 5, 1, dl)
		if err != nil {
			t.Fatal(err)
		}
		return loss
	}
	f()
	dx := make([]float32, in.size())
	h.backward(dl, feat, in, make([]float32, 12), dx)
	fdCheck(t, "head dx", x, dx, 40, f)
	fdCheck(t, "head dw", h.w, h.dw, 20, f)
	fdCheck(t, "head db", h.b, h.db, 5, f)
}

// TestNetGradients checks every parameter tensor of a whole (narrow) network at once.
func TestNetGradients(t *testing.T) {
	for _, cfg := range []Config{
		{Arch: ArchSmall, Blocks: 3, Width: 16, InputSize: 8, Classes: 3},
		{Arch: ArchNIN3, Blocks: 3, Width: 8, InputSize: 8, Classes: 4},
	} {
		n, err := New(cfg, 11)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		x := randSlice(rng, 4*3*8*8)
		labels := []int{0, 1, 2, 1}
		ctx := context.Background()
		loss := func() float64 {
			logits, err := n.Forward(ctx, x, 4)
			if err != nil {
				t.Fatal(err)
			}
			l, _, _ := SoftmaxCrossEntropy(logits, labels, cfg.Classes, 1, make([]float32, len(logits)))
			return l
		}
		n.ZeroGrads()
		if _, _, err := n.TrainStep(ctx, x, labels, 1); err != nil {
			t.Fatal(err)
		}
		grads := append([]float32(nil), n.Grads()...)
		for _, s := range n.specs {
			if !s.State {
				fdCheckEps(t, cfg.Arch+" "+s.Name, n.params[s.Off:s.Off+s.Size], grads[s.Off:s.Off+s.Size], 6, 3e-4, loss)
			}
		}
	}
}

// testResBlock builds a residual block from spec with random parameters and its buffers for
// input geometry in, and the pass environment it runs in.
func testResBlock(rng *rand.Rand, spec resSpec, in shape) (*resBlock, *env) {
	r := newResBlock(spec)
	for _, u := range r.unitList() {
		u.conv.w, u.conv.dw = randSlice(rng, u.conv.weights()), make([]float32, u.conv.weights())
		for i := range u.conv.w {
			u.conv.w[i] *= 0.5
		}
		u.bn = newTestBN(rng, u.conv.cout)
		for i := range u.bn.gamma { // away from dead units, where ReLU kinks rule
			u.bn.gamma[i], u.bn.beta[i] = 0.5+abs32(u.bn.gamma[i]), 0.2*u.bn.beta[i]
		}
	}
	r.buffers(in, true)
	col, part, grad := 0, 0, in.size()
	r.visit(in, func(u *unit, in shape) {
		out := u.conv.outShape(in)
		col, part, grad = max(col, u.conv.colSize(in)), max(part, partialSize(out.rows(), out.C, 2)), max(grad, out.size())
	})
	z := r.recomputed(in)
	ws := &workspace{col: make([]float32, col+1), part: make([]float32, part), gC: make([]float32, grad),
		zs: [2][]float32{make([]float32, z), make([]float32, z)}}
	return r, &env{train: true, ws: ws}
}

// TestResidualBlockGradients checks the input and every parameter gradient of BasicBlocks and
// Bottlenecks, with identity and downsampling shortcuts (residual add, strided 3x3 and 1x1
// convs, the shared ReLU mask).
func TestResidualBlockGradients(t *testing.T) {
	cases := []struct {
		name string
		spec resSpec
		in   shape
	}{
		{"basic identity", basicSpec("b.", 4, 4, 1), shape{N: 2, H: 5, W: 5, C: 4}},
		{"basic downsample stride 2", basicSpec("b.", 4, 6, 2), shape{N: 2, H: 6, W: 6, C: 4}},
		{"bottleneck identity", bottleneckSpec("b.", 16, 4, 1), shape{N: 2, H: 5, W: 5, C: 16}},
		{"bottleneck downsample stride 2", bottleneckSpec("b.", 4, 3, 2), shape{N: 2, H: 7, W: 7, C: 4}},
		{"bottleneck widening stride 1", bottleneckSpec("b.", 4, 3, 1), shape{N: 2, H: 5, W: 5, C: 4}},
	}
	ctx := context.Background()
	for _, c := range cases {
		rng := rand.New(rand.NewPCG(13, uint64(c.in.H)))
		r, e := testResBlock(rng, c.spec, c.in)
		x := randSlice(rng, c.in.size())
		var rw []float32
		f := func() float64 {
			out, _, err := r.forward(ctx, e, x, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if rw == nil {
				rw = randSlice(rng, len(out))
			}
			return dot(out, rw)
		}
		f()
		grad := max(len(rw), c.in.size(), len(e.ws.gC))
		g, spare := make([]float32, grad), make([]float32, grad)
		copy(g, rw)
		dx, _, err := r.backward(ctx, e, g, spare, false)
		if err != nil {
			t.Fatal(err)
		}
		fdCheckKinks(t, c.name+" dx", x, dx[:c.in.size()], 40, f)
		for _, u := range r.unitList() {
			fdCheckKinks(t, c.name+" "+u.name+" conv", u.conv.w, u.conv.dw, 20, f)
			fdCheckKinks(t, c.name+" "+u.name+" gamma", u.bn.gamma, u.bn.dgamma, u.bn.c, f)
			fdCheckKinks(t, c.name+" "+u.name+" beta", u.bn.beta, u.bn.dbeta, u.bn.c, f)
		}
	}
}

func abs32(v float32) float32 { return max(v, -v) }
