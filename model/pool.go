package model

// poolKind selects max or average pooling.
type poolKind int

const (
	poolMax poolKind = iota
	poolAvg
)

// pool2d is MaxPool2d or AvgPool2d (count_include_pad=True, ceil_mode=False) with a square
// window on channels-last activations.
type pool2d struct {
	kind           poolKind
	k, stride, pad int
	argmax         []int32 // per output element: input pixel index h*W+w of the maximum
}

// outShape is the output geometry for input in.
func (p *pool2d) outShape(in shape) shape {
	return shape{N: in.N, H: (in.H+2*p.pad-p.k)/p.stride + 1, W: (in.W+2*p.pad-p.k)/p.stride + 1, C: in.C}
}

// window returns the clipped input range [h0, h1) of output index o along a side of length n,
// and PyTorch's count_include_pad divisor term (the range clipped only to the padded input).
func (p *pool2d) window(o, n int) (lo, hi, padded int) {
	lo = o*p.stride - p.pad
	hi = min(lo+p.k, n+p.pad)
	padded = hi - lo
	return max(lo, 0), min(hi, n), padded
}

// forward pools x (geometry in) into y.
func (p *pool2d) forward(x []float32, in shape, y []float32) {
	o := p.outShape(in)
	parallelFor(in.N*o.H, 4, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			n, oh := r/o.H, r%o.H
			h0, h1, ph := p.window(oh, in.H)
			for ow := range o.W {
				w0, w1, pw := p.window(ow, in.W)
				out := y[(r*o.W+ow)*o.C : (r*o.W+ow+1)*o.C]
				if p.kind == poolMax {
					p.maxWindow(x, in, n, h0, h1, w0, w1, out, p.argmax[(r*o.W+ow)*o.C:])
				} else {
					avgWindow(x, in, n, h0, h1, w0, w1, float32(ph*pw), out)
				}
			}
		}
	})
}

// maxWindow writes the channel-wise maximum of the window and its first position (row-major
// scan, strict comparison: PyTorch's tie rule) into out and arg.
func (p *pool2d) maxWindow(x []float32, in shape, n, h0, h1, w0, w1 int, out []float32, arg []int32) {
	C := in.C
	first := h0*in.W + w0
	copy(out, x[(n*in.H*in.W+first)*C:][:C])
	for c := range C {
		arg[c] = int32(first)
	}
	for ih := h0; ih < h1; ih++ {
		for iw := w0; iw < w1; iw++ {
			idx := ih*in.W + iw
			if idx == first {
				continue
			}
			maxStep(out, arg[:C], x[(n*in.H*in.W+idx)*C:][:C], int32(idx))
		}
	}
}

// avgWindow writes the window sum divided by div into out.
func avgWindow(x []float32, in shape, n, h0, h1, w0, w1 int, div float32, out []float32) {
	C := in.C
	clear(out)
	for ih := h0; ih < h1; ih++ {
		for iw := w0; iw < w1; iw++ {
			addTo(out, x[(n*in.H*in.W+ih*in.W+iw)*C:][:C])
		}
	}
	inv := 1 / div
	for c := range out {
		out[c] *= inv
	}
}

// backward writes the input gradient dx from the output gradient dy. Images are independent,
// so the work is split by image and every sum runs in a fixed order.
func (p *pool2d) backward(dy []float32, in shape, dx []float32) {
	o := p.outShape(in)
	img := in.H * in.W * in.C
	C := in.C
	parallelFor(in.N, 1, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			d := dx[n*img : (n+1)*img]
			clear(d)
			for oh := range o.H {
				h0, h1, ph := p.window(oh, in.H)
				for ow := range o.W {
					at := ((n*o.H+oh)*o.W + ow) * C
					g := dy[at : at+C]
					if p.kind == poolMax {
						for c, v := range g {
							d[int(p.argmax[at+c])*C+c] += v
						}
						continue
					}
					w0, w1, pw := p.window(ow, in.W)
					spreadAvg(d, g, in, h0, h1, w0, w1, 1/float32(ph*pw))
				}
			}
		}
	})
}

// spreadAvg adds g*inv to every pixel of the window in the image gradient d.
func spreadAvg(d, g []float32, in shape, h0, h1, w0, w1 int, inv float32) {
	C := in.C
	for ih := h0; ih < h1; ih++ {
		for iw := w0; iw < w1; iw++ {
			t := d[(ih*in.W+iw)*C : (ih*in.W+iw+1)*C]
			for c, v := range g {
				t[c] += v * inv
			}
		}
	}
}
