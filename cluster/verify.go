package cluster

// RingOrderSum is the serial element-wise sum of bufs (one per member, in
// ring order, equal lengths) computed in exactly the order a ring of
// len(bufs) members sums them: a correct AllReduce leaves
// this result, bit for bit, on every member.
func RingOrderSum(bufs [][]float32) []float32 {
	n := len(bufs)
	if n == 0 {
		return nil
	}
	out := make([]float32, len(bufs[0]))
	p := plan{n: n, length: len(out), pieceElems: 1, lanes: 1}
	for c := range n {
		lo, hi := p.segment(c)
		copy(out[lo:hi], bufs[c][lo:hi])
		for j := 1; j < n; j++ {
			src := bufs[(c+j)%n][lo:hi]
			dst := out[lo:hi]
			for i := range dst {
				dst[i] = src[i] + dst[i]
			}
		}
	}
	return out
}
