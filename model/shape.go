package model

// shape is the geometry of a channels-last activation: N images of H x W pixels with C channels.
type shape struct{ N, H, W, C int }

// size is the number of elements of the activation.
func (s shape) size() int { return s.N * s.H * s.W * s.C }

// rows is the number of pixels (the GEMM row count of a convolution).
func (s shape) rows() int { return s.N * s.H * s.W }

// nchwToNHWC transposes one NCHW batch into channels-last order.
func nchwToNHWC(src, dst []float32, s shape) {
	hw := s.H * s.W
	parallelFor(s.N, 1, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			in := src[n*s.C*hw : (n+1)*s.C*hw]
			out := dst[n*s.C*hw : (n+1)*s.C*hw]
			for c := range s.C {
				plane := in[c*hw : (c+1)*hw]
				for p, v := range plane {
					out[p*s.C+c] = v
				}
			}
		}
	})
}

// nhwcToNCHW transposes one channels-last batch into NCHW order.
func nhwcToNCHW(src, dst []float32, s shape) {
	hw := s.H * s.W
	parallelFor(s.N, 1, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			in := src[n*s.C*hw : (n+1)*s.C*hw]
			out := dst[n*s.C*hw : (n+1)*s.C*hw]
			for p := range hw {
				px := in[p*s.C : (p+1)*s.C]
				for c, v := range px {
					out[c*hw+p] = v
				}
			}
		}
	})
}
