package shard

import "math"

// tap is one output sample's weights over consecutive source samples
// first, first+1, ...
type tap struct {
	first int
	w     []float32
}

// axisTaps returns the taps that resample the source interval
// [start, start+extent) of an axis with n samples to out samples: an exact
// area (box) filter when shrinking, bilinear interpolation when enlarging.
func axisTaps(n int, start, extent float64, out int) []tap {
	taps := make([]tap, out)
	scale := extent / float64(out)
	for i := range taps {
		if scale >= 1 {
			taps[i] = boxTap(n, start+float64(i)*scale, scale)
		} else {
			taps[i] = linearTap(n, start+(float64(i)+0.5)*scale-0.5)
		}
	}
	return taps
}

// boxTap weights each source sample by its overlap with [lo, lo+width).
func boxTap(n int, lo, width float64) tap {
	hi := lo + width
	first := max(int(math.Floor(lo)), 0)
	last := min(int(math.Ceil(hi))-1, n-1)
	t := tap{first: first, w: make([]float32, 0, last-first+1)}
	for j := first; j <= last; j++ {
		overlap := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j))
		t.w = append(t.w, float32(math.Max(overlap, 0)/width))
	}
	return t
}

// linearTap interpolates between the two samples around centre c, clamped
// to the edges.
func linearTap(n int, c float64) tap {
	c = math.Min(math.Max(c, 0), float64(n-1))
	j := int(math.Floor(c))
	if j >= n-1 {
		return tap{first: n - 1, w: []float32{1}}
	}
	f := float32(c - float64(j))
	return tap{first: j, w: []float32{1 - f, f}}
}

// resampleRGB resamples src (w x h x 3, HWC) into dst (len(ty) x len(tx) x
// 3) with separable taps: horizontal first, then vertical.
func resampleRGB(dst, src []uint8, w, h int, tx, ty []tap) {
	ow := len(tx)
	tmp := make([]float32, h*ow*3)
	for y := 0; y < h; y++ {
		row := src[y*w*3 : (y+1)*w*3]
		out := tmp[y*ow*3 : (y+1)*ow*3]
		for i, t := range tx {
			var r, g, b float32
			for k, wt := range t.w {
				p := row[(t.first+k)*3 : (t.first+k)*3+3]
				r += wt * float32(p[0])
				g += wt * float32(p[1])
				b += wt * float32(p[2])
			}
			out[i*3], out[i*3+1], out[i*3+2] = r, g, b
		}
	}
	for o, t := range ty {
		out := dst[o*ow*3 : (o+1)*ow*3]
		acc := make([]float32, ow*3)
		for k, wt := range t.w {
			row := tmp[(t.first+k)*ow*3 : (t.first+k+1)*ow*3]
			for i, v := range row {
				acc[i] += wt * v
			}
		}
		for i, v := range acc {
			out[i] = clampByte(v)
		}
	}
}

// clampByte rounds v to the nearest byte value.
func clampByte(v float32) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}
