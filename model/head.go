package model

// head is the classifier: global average pool over the pixels, then Linear(cin, classes) with bias.
type head struct {
	cin, classes int
	w, b, dw, db []float32 // views: weight [classes][cin], bias [classes]
}

// forward pools x (geometry in) into feat ([N x cin]) and writes logits ([N x classes]).
func (h *head) forward(x []float32, in shape, feat, logits []float32) {
	globalAvgPool(x, in, feat)
	sgemm(false, true, in.N, h.classes, h.cin, 1, feat, h.cin, h.w, h.cin, 0, logits, h.classes)
	for n := range in.N {
		row := logits[n*h.classes : (n+1)*h.classes]
		for j := range row {
			row[j] += h.b[j]
		}
	}
}

// backward accumulates the weight and bias gradients from dlogits and writes the gradient of the
// pooled input into dx (geometry in); dfeat ([N x cin]) is scratch.
func (h *head) backward(dlogits, feat []float32, in shape, dfeat, dx []float32) {
	sgemm(true, false, h.classes, h.cin, in.N, 1, dlogits, h.classes, feat, h.cin, 1, h.dw, h.cin)
	for j := range h.classes {
		var s float64
		for n := range in.N {
			s += float64(dlogits[n*h.classes+j])
		}
		h.db[j] += float32(s)
	}
	sgemm(false, false, in.N, h.cin, h.classes, 1, dlogits, h.classes, h.w, h.cin, 0, dfeat, h.cin)
	hw := in.H * in.W
	inv := 1 / float32(hw)
	parallelFor(in.N, 1, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			g := dfeat[n*h.cin : (n+1)*h.cin]
			for p := range hw {
				t := dx[(n*hw+p)*h.cin : (n*hw+p+1)*h.cin]
				for c, v := range g {
					t[c] = v * inv
				}
			}
		}
	})
}

// globalAvgPool averages each image's pixels per channel (float64 accumulation).
func globalAvgPool(x []float32, in shape, out []float32) {
	hw := in.H * in.W
	parallelFor(in.N, 1, func(lo, hi int) {
		acc := make([]float64, in.C)
		for n := lo; n < hi; n++ {
			clear(acc)
			for p := range hw {
				for c, v := range x[(n*hw+p)*in.C : (n*hw+p+1)*in.C] {
					acc[c] += float64(v)
				}
			}
			for c, v := range acc {
				out[n*in.C+c] = float32(v / float64(hw))
			}
		}
	})
}

// gridSide is the side g of the largest g x g grid (at most the map's
// side) whose pooled features, channels x g x g, fit in maxDims; at least 1.
func gridSide(in shape, maxDims int) int {
	g := 1
	for g < min(in.H, in.W) && in.C*(g+1)*(g+1) <= maxDims {
		g++
	}
	return g
}

// adaptiveAvgPool averages each channel of x over a g x g grid of bins as
// PyTorch's AdaptiveAvgPool2d does (bin i spans rows floor(i*H/g) up to
// ceil((i+1)*H/g), so bins may overlap), writing per image the C x g x g
// values channel-major (the order of a flattened NCHW tensor).
func adaptiveAvgPool(x []float32, in shape, g int, out []float32) {
	per := in.C * g * g
	parallelFor(in.N, 1, func(lo, hi int) {
		acc := make([]float64, in.C)
		for n := lo; n < hi; n++ {
			img := x[n*in.H*in.W*in.C : (n+1)*in.H*in.W*in.C]
			for by := range g {
				y0, y1 := by*in.H/g, ((by+1)*in.H+g-1)/g
				for bx := range g {
					x0, x1 := bx*in.W/g, ((bx+1)*in.W+g-1)/g
					clear(acc)
					for y := y0; y < y1; y++ {
						for xx := x0; xx < x1; xx++ {
							for c, v := range img[(y*in.W+xx)*in.C : (y*in.W+xx+1)*in.C] {
								acc[c] += float64(v)
							}
						}
					}
					area := float64((y1 - y0) * (x1 - x0))
					for c, v := range acc {
						out[n*per+c*g*g+by*g+bx] = float32(v / area)
					}
				}
			}
		}
	})
}
