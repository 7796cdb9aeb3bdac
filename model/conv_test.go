package model

import "testing"

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
