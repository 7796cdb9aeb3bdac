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
	return new(tapSet).build(n, start, extent, out)
}

// tapSet is axisTaps with storage reused from one call to the next: the
// taps build returns are valid until its next call.
type tapSet struct {
	taps []tap
	w    []float32
	ends []int
}

// reserve makes room for the taps of any interval of an axis of n samples
// to out samples: a box tap of width scale covers at most scale+2 samples,
// so all of them at most n+2*out; a bilinear tap 2.
func (s *tapSet) reserve(n, out int) {
	s.taps = make([]tap, 0, out)
	s.w = make([]float32, 0, n+2*out)
	s.ends = make([]int, 0, out)
}

// build is axisTaps(n, start, extent, out) in s's storage.
func (s *tapSet) build(n int, start, extent float64, out int) []tap {
	s.w, s.ends = s.w[:0], s.ends[:0]
	if cap(s.taps) < out {
		s.taps = make([]tap, out)
	}
	s.taps = s.taps[:out]
	scale := extent / float64(out)
	for i := range s.taps {
		if scale >= 1 {
			s.taps[i].first, s.w = boxTap(s.w, n, start+float64(i)*scale, scale)
		} else {
			s.taps[i].first, s.w = linearTap(s.w, n, start+(float64(i)+0.5)*scale-0.5)
		}
		s.ends = append(s.ends, len(s.w))
	}
	lo := 0
	for i, hi := range s.ends {
		s.taps[i].w = s.w[lo:hi:hi]
		lo = hi
	}
	return s.taps
}

// boxTap appends to w the weight of each source sample by its overlap with
// [lo, lo+width) and returns the first sample's index.
func boxTap(w []float32, n int, lo, width float64) (int, []float32) {
	hi := lo + width
	first := max(int(math.Floor(lo)), 0)
	last := min(int(math.Ceil(hi))-1, n-1)
	for j := first; j <= last; j++ {
		overlap := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j))
		w = append(w, float32(math.Max(overlap, 0)/width))
	}
	return first, w
}

// linearTap appends to w the weights interpolating between the two samples
// around centre c, clamped to the edges, and returns the first's index.
func linearTap(w []float32, n int, c float64) (int, []float32) {
	c = math.Min(math.Max(c, 0), float64(n-1))
	j := int(math.Floor(c))
	if j >= n-1 {
		return n - 1, append(w, 1)
	}
	f := float32(c - float64(j))
	return j, append(w, 1-f, f)
}

// resampleRGB resamples src (w x h x 3, HWC) into dst (len(ty) x len(tx) x
// 3) with separable taps: horizontal first, then vertical.
func resampleRGB(dst, src []uint8, w, h int, tx, ty []tap) {
	new(resampler).rgb(dst, src, w, h, tx, ty)
}

// resampler is resampleRGB with its scratch reused from one call to the
// next.
type resampler struct {
	tmp, acc []float32
}

// rgb is resampleRGB(dst, src, w, h, tx, ty) in rs's scratch. Only the
// source rows the vertical taps read are filtered horizontally.
func (rs *resampler) rgb(dst, src []uint8, w, h int, tx, ty []tap) {
	ow := len(tx)
	r0, r1 := tapSpan(ty)
	rs.tmp = grow(rs.tmp, (r1-r0)*ow*3)
	for y := r0; y < r1; y++ {
		row := src[y*w*3 : (y+1)*w*3]
		out := rs.tmp[(y-r0)*ow*3 : (y-r0+1)*ow*3]
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
	rs.acc = grow(rs.acc, ow*3)
	acc := rs.acc
	for o, t := range ty {
		out := dst[o*ow*3 : (o+1)*ow*3]
		clear(acc)
		for k, wt := range t.w {
			row := rs.tmp[(t.first+k-r0)*ow*3 : (t.first+k-r0+1)*ow*3]
			for i, v := range row {
				acc[i] += wt * v
			}
		}
		for i, v := range acc {
			out[i] = clampByte(v)
		}
	}
}

// tapSpan is the source samples [lo, hi) that taps read.
func tapSpan(taps []tap) (lo, hi int) {
	lo, hi = math.MaxInt, 0
	for _, t := range taps {
		lo, hi = min(lo, t.first), max(hi, t.first+len(t.w))
	}
	return lo, max(hi, lo)
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
