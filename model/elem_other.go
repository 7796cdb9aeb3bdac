//go:build !amd64

package model

// bnApply writes z = max(0, y*scale + shift) for rows x len(scale) values.
func bnApply(y, z, scale, shift []float32, rows int) { bnApplyGo(y, z, scale, shift, rows) }

// bnStats adds d = y - k to s1 and d*d to s2 per channel over rows x len(k) values.
func bnStats(y, k, s1, s2 []float32, rows int) { bnStatsGo(y, k, s1, s2, rows) }

// bnBackReduce masks g by z > 0 in place and adds g to sdy and g*(y-mean) to sdx per channel.
func bnBackReduce(g, y, z, mean, sdy, sdx []float32, rows int) {
	bnBackReduceGo(g, y, z, mean, sdy, sdx, rows)
}

// bnInputGrad writes g = a*g - k*y + o per channel in place.
func bnInputGrad(g, y, a, k, o []float32, rows int) { bnInputGradGo(g, y, a, k, o, rows) }

// useAVX2 is false off amd64: the portable kernels always run.
var useAVX2 = false

// maxStep sets out = x and arg = idx where x > out, element-wise over len(out).
func maxStep(out []float32, arg []int32, x []float32, idx int32) { maxStepGo(out, arg, x, idx) }

// addTo adds src into dst element-wise (len(dst) values).
func addTo(dst, src []float32) { addToGo(dst, src) }
