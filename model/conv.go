package model

import "github.com/whorl-ml/whorl/model/gemm"

// colLimit bounds the im2col scratch (in floats); convolutions run over chunks of whole images
// that fit. The chunking depends only on the layer geometry, never on the thread count.
const colLimit = 1 << 23

// conv2d is a bias-free 2-D convolution (PyTorch Conv2d, square kernel) on channels-last
// activations. It is computed as GEMMs: Y[M x Cout] = im2col(X)[M x K] * Wr^T, where
// K = k*k*Cin ordered (kh, kw, cin) and Wr is the weight reordered to [Cout][k][k][Cin].
// A 1x1 convolution with stride 1 and no padding is a plain GEMM on the activation.
type conv2d struct {
	cin, cout, k, stride, pad int
	w, dw                     []float32 // views into the net's buffers, PyTorch layout [cout][cin][k][k]
	wr, dwr                   []float32 // reordered weight and its gradient scratch (nil for 1x1)
	cache                     []float32 // im2col of the whole last forward batch, kept for backward (optional)
	flip                      *conv2d   // the transposed convolution computing dx, when that is cheaper
}

// newConv2d returns a convolution; w and dw are bound later, and the reorder buffers are
// allocated by the first forward (ensureReorder), so that a network can be built to count its
// memory without holding it.
func newConv2d(cin, cout, k, stride, pad int) *conv2d {
	c := &conv2d{cin: cin, cout: cout, k: k, stride: stride, pad: pad}
	if stride == 1 && 2*pad == k-1 && k > 1 && cout <= cin {
		// dx of a stride-1 "same" convolution is the same convolution of dy with the weights
		// transposed and flipped: one im2col copy of k*k*cout per pixel and a GEMM writing dx,
		// instead of a GEMM writing k*k*cin column gradients per pixel and scatter-adding them.
		c.flip = &conv2d{cin: cout, cout: cin, k: k, stride: 1, pad: pad}
	}
	return c
}

// reorderSize is the floats of the reorder buffers: wr and dwr, and the flipped weights.
func (c *conv2d) reorderSize() int {
	if c.pointwise() {
		return 0
	}
	n := 2 * c.weights()
	if c.flip != nil {
		n += c.weights()
	}
	return n
}

// ensureReorder allocates the reorder buffers on first use.
func (c *conv2d) ensureReorder() {
	if c.pointwise() || c.wr != nil {
		return
	}
	c.wr, c.dwr = make([]float32, c.weights()), make([]float32, c.weights())
	if c.flip != nil {
		c.flip.wr = make([]float32, c.weights())
	}
}

// pointwise reports whether the convolution is a plain GEMM on the activation.
func (c *conv2d) pointwise() bool { return c.k == 1 && c.stride == 1 && c.pad == 0 }

// kdim is the GEMM inner dimension k*k*Cin.
func (c *conv2d) kdim() int { return c.k * c.k * c.cin }

// weights is the number of weight elements.
func (c *conv2d) weights() int { return c.cout * c.kdim() }

// outShape is the output geometry for input in (PyTorch's floor formula).
func (c *conv2d) outShape(in shape) shape {
	return shape{N: in.N, H: (in.H+2*c.pad-c.k)/c.stride + 1, W: (in.W+2*c.pad-c.k)/c.stride + 1, C: c.cout}
}

// chunk is how many images one im2col pass holds: the batch cut into the fewest chunks that fit
// colLimit, all of one size but the last (a short last chunk would pay the per-call GEMM costs,
// packing the weights and loading the weight gradient, for a few rows).
func (c *conv2d) chunk(in shape) int {
	o := c.outShape(in)
	most := max(1, colLimit/(o.H*o.W*c.kdim()))
	if in.N <= most {
		return max(1, in.N)
	}
	n := (in.N + most - 1) / most
	return (in.N + n - 1) / n
}

// colSize is the im2col scratch this layer needs for input geometry in and for every smaller
// batch of the same images (a workspace serves them all): the chunk of a smaller batch can be
// larger than the full batch's (128 images at 101 a chunk run as two of 64, 100 as one of
// 100), so the scratch holds the most images a chunk can, min(N, colLimit / per-image).
func (c *conv2d) colSize(in shape) int {
	if c.pointwise() {
		return 0
	}
	o := c.outShape(in)
	most := max(1, colLimit/(o.H*o.W*c.kdim()))
	n := min(most, in.N) * o.H * o.W * c.kdim()
	if c.flip != nil {
		n = max(n, c.flip.colSize(o))
	}
	return n
}

// forward computes y = conv(x) for input geometry in, using col as im2col scratch.
func (c *conv2d) forward(x []float32, in shape, y, col []float32) {
	if c.pointwise() {
		sgemm(false, true, in.rows(), c.cout, c.cin, 1, x, c.cin, c.w, c.cin, 0, y, c.cout)
		return
	}
	c.ensureReorder()
	c.reorder()
	c.gemmForward(x, in, y, col)
}

// gemmForward computes y from x with the reordered weights wr. Without an im2col cache the
// GEMM builds the patches itself, one cache-sized block at a time (patches); a layer that keeps
// them for backward writes them chunk by chunk into its cache first.
func (c *conv2d) gemmForward(x []float32, in shape, y, col []float32) {
	o := c.outShape(in)
	kd, per, cb := c.kdim(), o.H*o.W, c.chunk(in)
	if c.cache == nil {
		sgemmRows(true, in.N*per, c.cout, kd, 1, c.patches(x, in), c.wr, kd, 0, y, c.cout)
		return
	}
	for n0 := 0; n0 < in.N; n0 += cb {
		nb := min(cb, in.N-n0)
		cc := c.colFor(n0, per, col)
		c.im2col(x, in, n0, nb, cc)
		sgemm(false, true, nb*per, c.cout, kd, 1, cc, kd, c.wr, kd, 0, y[n0*per*c.cout:], c.cout)
	}
}

// colFor is where the im2col rows of the chunk starting at image n0 live: the forward cache
// when the layer has one, else the shared scratch.
func (c *conv2d) colFor(n0, per int, col []float32) []float32 {
	if c.cache != nil {
		return c.cache[n0*per*c.kdim():]
	}
	return col
}

// cacheSize is the im2col cache this layer would need for input geometry in (0 for 1x1).
func (c *conv2d) cacheSize(in shape) int {
	if c.pointwise() {
		return 0
	}
	o := c.outShape(in)
	return in.N * o.H * o.W * c.kdim()
}

// backward accumulates the weight gradient into dw and, when dx is not nil, writes the input
// gradient into dx. x is the forward input; dy the output gradient; col is scratch. The weight
// gradient dy^T * im2col(x) reads the forward's im2col cache, or, without one, has the GEMM
// build the patches block by block (one call over the whole batch).
func (c *conv2d) backward(x []float32, in shape, dy, dx, col []float32) {
	if c.pointwise() {
		m := in.rows()
		sgemm(true, false, c.cout, c.cin, m, 1, dy, c.cout, x, c.cin, 1, c.dw, c.cin)
		if dx != nil {
			sgemm(false, false, m, c.cin, c.cout, 1, dy, c.cout, c.w, c.cin, 0, dx, c.cin)
		}
		return
	}
	c.ensureReorder() // a backward without a forward before it (tests)
	o := c.outShape(in)
	kd, per, cb := c.kdim(), o.H*o.W, c.chunk(in)
	if c.cache == nil {
		sgemmRowsB(true, c.cout, kd, in.N*per, 1, dy, c.cout, c.patches(x, in), 0, c.dwr, kd)
	}
	for n0 := 0; n0 < in.N; n0 += cb {
		nb := min(cb, in.N-n0)
		dyc := dy[n0*per*c.cout:]
		if c.cache != nil {
			beta := float32(1)
			if n0 == 0 {
				beta = 0
			}
			sgemm(true, false, c.cout, kd, nb*per, 1, dyc, c.cout, c.colFor(n0, per, col), kd, beta, c.dwr, kd)
		}
		if dx != nil && c.flip == nil {
			sgemm(false, false, nb*per, kd, c.cout, 1, dyc, c.cout, c.wr, kd, 0, col, kd)
			c.col2im(col, in, n0, nb, dx)
		}
	}
	c.accumulateGrad()
	if dx != nil && c.flip != nil {
		c.flipWeights()
		c.flip.gemmForward(dy, o, dx, col)
	}
}

// flipWeights fills flip.wr[ci][kh][kw][co] = w[co][ci][k-1-kh][k-1-kw], in parallel over ci
// (each goroutine writes its own rows).
func (c *conv2d) flipWeights() {
	k, kk := c.k, c.k*c.k
	wr := c.flip.wr
	parallelFor(c.cin, 8, func(lo, hi int) {
		for ci := lo; ci < hi; ci++ {
			for p := range kk {
				q := (k-1-p/k)*k + (k - 1 - p%k)
				dst := wr[(ci*kk+q)*c.cout : (ci*kk+q+1)*c.cout]
				for co := range dst {
					dst[co] = c.w[(co*c.cin+ci)*kk+p]
				}
			}
		}
	})
}

// reorder copies w ([cout][cin][kh][kw]) into wr ([cout][kh][kw][cin]), in parallel over cout.
func (c *conv2d) reorder() {
	kk := c.k * c.k
	parallelFor(c.cout, 8, func(lo, hi int) {
		for co := lo; co < hi; co++ {
			src := c.w[co*c.cin*kk : (co+1)*c.cin*kk]
			dst := c.wr[co*c.cin*kk : (co+1)*c.cin*kk]
			for ci := range c.cin {
				for p := range kk {
					dst[p*c.cin+ci] = src[ci*kk+p]
				}
			}
		}
	})
}

// accumulateGrad adds dwr ([cout][kh][kw][cin]) into dw ([cout][cin][kh][kw]), in parallel over
// cout (each element is one addition: the result does not depend on the split).
func (c *conv2d) accumulateGrad() {
	kk := c.k * c.k
	parallelFor(c.cout, 8, func(lo, hi int) {
		for co := lo; co < hi; co++ {
			src := c.dwr[co*c.cin*kk : (co+1)*c.cin*kk]
			dst := c.dw[co*c.cin*kk : (co+1)*c.cin*kk]
			for ci := range c.cin {
				for p := range kk {
					dst[ci*kk+p] += src[p*c.cin+ci]
				}
			}
		}
	})
}

// im2col writes the patches of images [n0, n0+nb) into col, one row of k*k*Cin per output
// pixel (the rows patches gives), in parallel over output rows.
func (c *conv2d) im2col(x []float32, in shape, n0, nb int, col []float32) {
	o := c.outShape(in)
	kd, fill := c.kdim(), c.patches(x, in)
	parallelFor(nb*o.H, 4, func(lo, hi int) {
		fill(col[lo*o.W*kd:hi*o.W*kd], (n0*o.H+lo)*o.W, (hi-lo)*o.W, 0, kd)
	})
}

// patches is im2col(x) as a gemm.Rows: row i is output pixel i of the batch (image, oh, ow),
// column p is (kh, kw, cin), the value x[image, oh*stride-pad+kh, ow*stride-pad+kw, cin] or 0
// in the padding.
func (c *conv2d) patches(x []float32, in shape) gemm.Rows {
	o := c.outShape(in)
	per, seg := o.H*o.W, c.k*c.cin
	return func(dst []float32, i0, rows, p0, kc int) {
		n, oh, ow := i0/per, i0%per/o.W, i0%o.W
		kh0, off0 := p0/seg, p0%seg
		span := (off0 + kc + seg - 1) / seg // kernel rows the columns touch
		for r := range rows {
			d := dst[r*kc : (r+1)*kc]
			ih0, iw0 := oh*c.stride-c.pad+kh0, ow*c.stride-c.pad
			if ih0 >= 0 && ih0+span <= in.H && iw0 >= 0 && iw0+c.k <= in.W {
				c.patchInside(d, x, in, n, ih0, iw0, off0)
			} else {
				c.patchRow(d, x, in, n, ih0, iw0, off0)
			}
			if ow++; ow == o.W {
				if ow, oh = 0, oh+1; oh == o.H {
					oh, n = 0, n+1
				}
			}
		}
	}
}

// patchInside writes columns off0.. of a patch row (len(d) of them) starting in the kernel row
// at input row ih0, columns iw0..iw0+k-1 of image n, when every pixel it reads is inside the
// image: one copy per kernel row, no padding.
func (c *conv2d) patchInside(d, x []float32, in shape, n, ih0, iw0, off0 int) {
	seg, stride := c.k*c.cin, in.W*c.cin
	src := ((n*in.H+ih0)*in.W+iw0)*c.cin + off0
	for q, l := 0, min(seg-off0, len(d)); q < len(d); l = min(seg, len(d)-q) {
		copy(d[q:q+l], x[src:src+l])
		q, src = q+l, src+stride-off0
		off0 = 0
	}
}

// patchRow writes columns off0.. of a patch row (len(d) of them) starting in the kernel row at
// input row ih0, kernel row by kernel row, with the padding as zeros.
func (c *conv2d) patchRow(d, x []float32, in shape, n, ih0, iw0, off0 int) {
	seg := c.k * c.cin
	for ih, off, q := ih0, off0, 0; q < len(d); ih, off = ih+1, 0 {
		end := min(seg, off+len(d)-q)
		c.patchPart(d[q:q+end-off], x, in, n, ih, iw0, off, end)
		q += end - off
	}
}

// patchPart writes floats off..end-1 of one kernel row (k pixels of Cin channels from input
// row ih, columns iw0..iw0+k-1, of image n) into d, zero where the row or a column is padding.
func (c *conv2d) patchPart(d, x []float32, in shape, n, ih, iw0, off, end int) {
	if ih < 0 || ih >= in.H {
		clear(d)
		return
	}
	lo, hi := max(off, max(0, -iw0)*c.cin), min(end, min(c.k, in.W-iw0)*c.cin)
	if lo >= hi {
		clear(d)
		return
	}
	base := ((n*in.H+ih)*in.W + iw0) * c.cin
	clear(d[:lo-off])
	copy(d[lo-off:hi-off], x[base+lo:base+hi])
	clear(d[hi-off:])
}

// col2im adds the column gradients of images [n0, n0+nb) back into dx (zeroing it first).
// Images are independent, so the work is split by image and the sum order is fixed.
func (c *conv2d) col2im(col []float32, in shape, n0, nb int, dx []float32) {
	o := c.outShape(in)
	kd, seg, img := c.kdim(), c.k*c.cin, in.H*in.W*in.C
	parallelFor(nb, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			n := n0 + i
			d := dx[n*img : (n+1)*img]
			clear(d)
			for oh := range o.H {
				for ow := range o.W {
					src := col[((i*o.H+oh)*o.W+ow)*kd:]
					c.addPatch(d, src, in, oh, ow, seg)
				}
			}
		}
	})
}

// addPatch adds one output pixel's column gradient into the image gradient d.
func (c *conv2d) addPatch(d, src []float32, in shape, oh, ow, seg int) {
	iw0 := ow*c.stride - c.pad
	lo, hi := max(0, -iw0), min(c.k, in.W-iw0)
	if lo >= hi {
		return
	}
	for kh := range c.k {
		ih := oh*c.stride - c.pad + kh
		if ih < 0 || ih >= in.H {
			continue
		}
		s := src[kh*seg+lo*c.cin : kh*seg+hi*c.cin]
		addTo(d[(ih*in.W+iw0+lo)*c.cin:(ih*in.W+iw0+hi)*c.cin], s)
	}
}
