package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestChunkIsBalanced checks the im2col chunking: the fewest chunks that fit colLimit, all of one
// size but a last one at most one image shorter per chunk (never a short tail like 113 + 15).
func TestChunkIsBalanced(t *testing.T) {
	for _, tc := range []struct {
		name               string
		cin, cout, k, s, p int
		in                 shape
		want               int
	}{
		{"layer1-3x3-64-at-32px-batch-128", 64, 64, 3, 1, 1, shape{N: 128, H: 32, W: 32, C: 64}, 13},
		{"layer4-3x3-512-at-4px-batch-128", 512, 512, 3, 1, 1, shape{N: 128, H: 4, W: 4, C: 512}, 64},
		{"stem-7x7-s2-at-128px-batch-128", 3, 64, 7, 2, 3, shape{N: 128, H: 128, W: 128, C: 3}, 13},
		{"fits-whole-batch", 32, 32, 3, 1, 1, shape{N: 8, H: 8, W: 8, C: 32}, 8},
		{"one-image-over-the-limit", 512, 512, 3, 1, 1, shape{N: 3, H: 64, W: 64, C: 512}, 1},
		{"empty-batch", 3, 8, 3, 1, 1, shape{N: 0, H: 8, W: 8, C: 3}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConv2d(tc.cin, tc.cout, tc.k, tc.s, tc.p)
			o := c.outShape(tc.in)
			per := o.H * o.W * c.kdim()
			most := max(1, colLimit/per)
			cb := c.chunk(tc.in)
			if cb != tc.want {
				t.Fatalf("chunk = %d images, want %d (limit allows %d)", cb, tc.want, most)
			}
			if tc.in.N == 0 {
				return
			}
			n := (tc.in.N + cb - 1) / cb
			if fewest := (tc.in.N + most - 1) / most; n != fewest {
				t.Errorf("%d chunks of %d, want the fewest that fit: %d", n, cb, fewest)
			}
			if cb > 1 && cb*per > colLimit {
				t.Errorf("chunk of %d images needs %d floats, over colLimit %d", cb, cb*per, colLimit)
			}
			if last := tc.in.N - (n-1)*cb; last < 1 || cb-last > n-1 {
				t.Errorf("last chunk %d images against %d: not balanced over %d chunks", last, cb, n)
			}
		})
	}
}

// convGeometries are the convolution shapes the patch tests cover: 3x3 same, strided, the
// ImageNet stem, 1x1 strided shortcut, a kernel wider than the image, and padding over 1.
var convGeometries = []struct {
	name               string
	cin, cout, k, s, p int
	in                 shape
}{
	{"3x3-s1", 5, 7, 3, 1, 1, shape{N: 3, H: 6, W: 5, C: 5}},
	{"3x3-s2", 4, 6, 3, 2, 1, shape{N: 2, H: 7, W: 8, C: 4}},
	{"7x7-s2-stem", 3, 8, 7, 2, 3, shape{N: 2, H: 11, W: 11, C: 3}},
	{"1x1-s2-shortcut", 6, 9, 1, 2, 0, shape{N: 3, H: 5, W: 6, C: 6}},
	{"5x5-on-3px", 2, 3, 5, 1, 2, shape{N: 2, H: 3, W: 3, C: 2}},
	{"3x3-pad2", 3, 4, 3, 1, 2, shape{N: 1, H: 4, W: 4, C: 3}},
}

// im2colRef is the im2col matrix by its definition: row (n, oh, ow), column (kh, kw, ci) holds
// x[n, oh*stride-pad+kh, ow*stride-pad+kw, ci], or 0 in the padding.
func im2colRef(c *conv2d, x []float32, in shape) []float32 {
	o := c.outShape(in)
	col := make([]float32, in.N*o.H*o.W*c.kdim())
	i := 0
	for n := range in.N {
		for oh := range o.H {
			for ow := range o.W {
				for kh := range c.k {
					for kw := range c.k {
						ih, iw := oh*c.stride-c.pad+kh, ow*c.stride-c.pad+kw
						for ci := range c.cin {
							if ih >= 0 && ih < in.H && iw >= 0 && iw < in.W {
								col[i] = x[((n*in.H+ih)*in.W+iw)*c.cin+ci]
							}
							i++
						}
					}
				}
			}
		}
	}
	return col
}

// TestPatchesAreIm2col checks that every block patches writes equals the same block of the
// im2col matrix, for blocks that start and end anywhere (inside a kernel row, at the first and
// last pixel, across images), and that im2col writes the whole matrix chunk by chunk.
func TestPatchesAreIm2col(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 5))
	for _, g := range convGeometries {
		t.Run(g.name, func(t *testing.T) {
			c := newConv2d(g.cin, g.cout, g.k, g.s, g.p)
			x := randSlice(rng, g.in.size())
			o := c.outShape(g.in)
			m, kd := g.in.N*o.H*o.W, c.kdim()
			col := im2colRef(c, x, g.in)
			chunked := make([]float32, m*kd)
			for n0 := 0; n0 < g.in.N; n0 += 2 {
				nb := min(2, g.in.N-n0)
				c.im2col(x, g.in, n0, nb, chunked[n0*o.H*o.W*kd:])
			}
			if !slices.Equal(chunked, col) {
				t.Fatal("im2col in chunks of 2 images differs from the definition")
			}
			rows := c.patches(x, g.in)
			for range 200 {
				i0, p0 := rng.IntN(m), rng.IntN(kd)
				n, kc := 1+rng.IntN(m-i0), 1+rng.IntN(kd-p0)
				dst := make([]float32, n*kc)
				for i := range dst {
					dst[i] = float32(math.NaN())
				}
				rows(dst, i0, n, p0, kc)
				for r := range n {
					for p := range kc {
						if got, want := dst[r*kc+p], col[(i0+r)*kd+p0+p]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("block (%d+%d, %d+%d): [%d][%d] = %g, im2col has %g", i0, n, p0, kc, r, p, got, want)
						}
					}
				}
			}
		})
	}
}

// TestConvWithoutColIsExact checks that a convolution whose GEMMs build the patches (no im2col
// cache: the ResNets) gives the bits of one that stores them: output, weight gradient and input
// gradient (the batches here fit one chunk, so the stored path sums in the same order).
func TestConvWithoutColIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 6))
	for _, g := range convGeometries {
		t.Run(g.name, func(t *testing.T) {
			c := newConv2d(g.cin, g.cout, g.k, g.s, g.p)
			c.w = randSlice(rng, c.weights())
			x := randSlice(rng, g.in.size())
			o := c.outShape(g.in)
			dy := randSlice(rng, o.size())
			col := make([]float32, c.colSize(g.in))
			run := func(cache []float32) (y, dw, dx []float32) {
				c.cache = cache
				y, dx = make([]float32, o.size()), make([]float32, g.in.size())
				c.dw = make([]float32, c.weights())
				c.forward(x, g.in, y, col)
				c.backward(x, g.in, dy, dx, col)
				return y, c.dw, dx
			}
			y1, dw1, dx1 := run(nil)
			y2, dw2, dx2 := run(make([]float32, c.cacheSize(g.in)))
			for _, v := range []struct {
				name          string
				built, stored []float32
			}{{"y", y1, y2}, {"dw", dw1, dw2}, {"dx", dx1, dx2}} {
				for i := range v.built {
					if math.Float32bits(v.built[i]) != math.Float32bits(v.stored[i]) {
						t.Fatalf("%s[%d] = %g with patches built in the GEMM, %g from the stored im2col", v.name, i, v.built[i], v.stored[i])
					}
				}
			}
		})
	}
}
