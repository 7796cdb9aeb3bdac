package model

// reduceBlock is the number of rows each partial sum covers. Partial sums are float32 over one
// block and combined in float64 in block order, so the result does not depend on thread count.
const reduceBlock = 128

// partialSize is the scratch blockReduce needs for m rows, c channels and k outputs per channel.
func partialSize(m, c, k int) int { return ((m + reduceBlock - 1) / reduceBlock) * c * k }

// blockReduce computes out[j] (len k*c) as the sum over rows of what fn accumulates. fn(r0, r1,
// acc) adds rows [r0, r1) into acc (len k*c, zeroed); part is scratch of partialSize(m, c, k).
func blockReduce(m, c, k int, part []float32, out []float64, fn func(r0, r1 int, acc []float32)) {
	nb := (m + reduceBlock - 1) / reduceBlock
	w := k * c
	parallelFor(nb, 8, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			acc := part[b*w : (b+1)*w]
			clear(acc)
			fn(b*reduceBlock, min((b+1)*reduceBlock, m), acc)
		}
	})
	clear(out[:w])
	for b := range nb {
		for j, v := range part[b*w : (b+1)*w] {
			out[j] += float64(v)
		}
	}
}
