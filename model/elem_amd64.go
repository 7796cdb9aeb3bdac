package model

import "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2+FMA row kernels (elem_amd64.s) when the CPU has them.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func bnApplyAVX2(y, z, scale, shift *float32, rows, c int)

//go:noescape
func bnStatsAVX2(y, k, s1, s2 *float32, rows, c int)

//go:noescape
func bnBackReduceAVX2(gp, y, z, mean, sdy, sdx *float32, rows, c int)

//go:noescape
func bnInputGradAVX2(gp, y, a, k, o *float32, rows, c int)

// vectorOK reports whether the assembly kernels apply to rows of c channels.
func vectorOK(rows, c int) bool { return useAVX2 && c%8 == 0 && c > 0 && rows > 0 }

// bnApply writes z = max(0, y*scale + shift) for rows x len(scale) values.
func bnApply(y, z, scale, shift []float32, rows int) {
	c := len(scale)
	if vectorOK(rows, c) {
		_, _ = y[rows*c-1], z[rows*c-1]
		bnApplyAVX2(&y[0], &z[0], &scale[0], &shift[0], rows, c)
		return
	}
	bnApplyGo(y, z, scale, shift, rows)
}

// bnStats adds d = y - k to s1 and d*d to s2 per channel over rows x len(k) values.
func bnStats(y, k, s1, s2 []float32, rows int) {
	c := len(k)
	if vectorOK(rows, c) {
		_, _, _ = y[rows*c-1], s1[c-1], s2[c-1]
		bnStatsAVX2(&y[0], &k[0], &s1[0], &s2[0], rows, c)
		return
	}
	bnStatsGo(y, k, s1, s2, rows)
}

// bnBackReduce masks g by z > 0 in place and adds g to sdy and g*(y-mean) to sdx per channel.
func bnBackReduce(g, y, z, mean, sdy, sdx []float32, rows int) {
	c := len(mean)
	if vectorOK(rows, c) {
		_, _, _, _, _ = g[rows*c-1], y[rows*c-1], z[rows*c-1], sdy[c-1], sdx[c-1]
		bnBackReduceAVX2(&g[0], &y[0], &z[0], &mean[0], &sdy[0], &sdx[0], rows, c)
		return
	}
	bnBackReduceGo(g, y, z, mean, sdy, sdx, rows)
}

// bnInputGrad writes g = a*g - k*y + o per channel in place.
func bnInputGrad(g, y, a, k, o []float32, rows int) {
	c := len(a)
	if vectorOK(rows, c) {
		_, _, _, _ = g[rows*c-1], y[rows*c-1], k[c-1], o[c-1]
		bnInputGradAVX2(&g[0], &y[0], &a[0], &k[0], &o[0], rows, c)
		return
	}
	bnInputGradGo(g, y, a, k, o, rows)
}

//go:noescape
func maxStepAVX2(out *float32, arg *int32, x *float32, idx int32, c int)

//go:noescape
func addAVX2(dst, src *float32, n int)

// maxStep sets out = x and arg = idx where x > out, element-wise over len(out).
func maxStep(out []float32, arg []int32, x []float32, idx int32) {
	c := len(out)
	if vectorOK(1, c) {
		_, _ = arg[c-1], x[c-1]
		maxStepAVX2(&out[0], &arg[0], &x[0], idx, c)
		return
	}
	maxStepGo(out, arg, x, idx)
}

// addTo adds src into dst element-wise (len(dst) values).
func addTo(dst, src []float32) {
	n := len(dst)
	if vectorOK(1, n) {
		_ = src[n-1]
		addAVX2(&dst[0], &src[0], n)
		return
	}
	addToGo(dst, src)
}
