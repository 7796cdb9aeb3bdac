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
