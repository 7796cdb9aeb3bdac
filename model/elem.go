package model

import "math"

// Portable versions of the BatchNorm+ReLU row kernels (see elem_amd64.s); branch-free where the
// branch would be unpredictable, and written so the compiler drops the bounds checks.

// bnApplyGo writes z = max(0, y*scale + shift).
func bnApplyGo(y, z, scale, shift []float32, rows int) {
	c := len(scale)
	shift = shift[:c]
	for r := range rows {
		yr, zr := y[r*c:(r+1)*c], z[r*c:(r+1)*c]
		yr, zr = yr[:len(scale)], zr[:len(scale)]
		for j, s := range scale {
			b := math.Float32bits(yr[j]*s + shift[j])
			b &^= uint32(int32(b) >> 31)
			zr[j] = math.Float32frombits(b)
		}
	}
}

// bnStatsGo adds d = y - k to s1 and d*d to s2.
func bnStatsGo(y, k, s1, s2 []float32, rows int) {
	c := len(k)
	s1, s2 = s1[:c], s2[:c]
	for r := range rows {
		yr := y[r*c : (r+1)*c]
		yr = yr[:len(k)]
		for j, kv := range k {
			d := yr[j] - kv
			s1[j] += d
			s2[j] += d * d
		}
	}
}

// bnBackReduceGo masks g by z > 0 and accumulates sdy += g, sdx += g*(y - mean).
func bnBackReduceGo(g, y, z, mean, sdy, sdx []float32, rows int) {
	c := len(mean)
	sdy, sdx = sdy[:c], sdx[:c]
	for r := range rows {
		gr, yr, zr := g[r*c:(r+1)*c], y[r*c:(r+1)*c], z[r*c:(r+1)*c]
		gr, yr, zr = gr[:len(mean)], yr[:len(mean)], zr[:len(mean)]
		for j, m := range mean {
			zb := math.Float32bits(zr[j]) &^ (1 << 31) // +0 and -0 both mean "clipped"
			mask := uint32(int32(zb|-zb) >> 31)
			gv := math.Float32frombits(math.Float32bits(gr[j]) & mask)
			gr[j] = gv
			sdy[j] += gv
			sdx[j] += gv * (yr[j] - m)
		}
	}
}

// bnInputGradGo writes g = a*g - k*y + o.
func bnInputGradGo(g, y, a, k, o []float32, rows int) {
	c := len(a)
	k, o = k[:c], o[:c]
	for r := range rows {
		gr, yr := g[r*c:(r+1)*c], y[r*c:(r+1)*c]
		gr, yr = gr[:len(a)], yr[:len(a)]
		for j, av := range a {
			gr[j] = av*gr[j] - k[j]*yr[j] + o[j]
		}
	}
}

// maxStepGo sets out = x and arg = idx where x > out.
func maxStepGo(out []float32, arg []int32, x []float32, idx int32) {
	arg, x = arg[:len(out)], x[:len(out)]
	for j, o := range out {
		if x[j] > o {
			out[j] = x[j]
			arg[j] = idx
		}
	}
}

// addToGo adds src into dst.
func addToGo(dst, src []float32) {
	src = src[:len(dst)]
	for j := range dst {
		dst[j] += src[j]
	}
}

// bnAffine writes z = y*scale + shift.
func bnAffine(y, z, scale, shift []float32, rows int) {
	c := len(scale)
	shift = shift[:c]
	for r := range rows {
		yr, zr := y[r*c:(r+1)*c], z[r*c:(r+1)*c]
		yr, zr = yr[:len(scale)], zr[:len(scale)]
		for j, s := range scale {
			zr[j] = yr[j]*s + shift[j]
		}
	}
}

// bnAddReLU writes z = max(0, y*scale + shift + res); z may be res.
func bnAddReLU(y, res, z, scale, shift []float32, rows int) {
	c := len(scale)
	shift = shift[:c]
	for r := range rows {
		yr, rr, zr := y[r*c:(r+1)*c], res[r*c:(r+1)*c], z[r*c:(r+1)*c]
		yr, rr, zr = yr[:len(scale)], rr[:len(scale)], zr[:len(scale)]
		for j, s := range scale {
			b := math.Float32bits(yr[j]*s + shift[j] + rr[j])
			b &^= uint32(int32(b) >> 31)
			zr[j] = math.Float32frombits(b)
		}
	}
}

// reluMask zeroes g where z is +0, -0 or negative, like bnBackReduceGo's mask.
func reluMask(g, z []float32) {
	z = z[:len(g)]
	for j := range g {
		zb := math.Float32bits(z[j]) &^ (1 << 31)
		mask := uint32(int32(zb|-zb) >> 31)
		g[j] = math.Float32frombits(math.Float32bits(g[j]) & mask)
	}
}
