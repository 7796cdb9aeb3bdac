package gemm

import "sync"

// Kernel names the micro-kernel selected at start-up for this CPU ("avx512", "avx2", "generic").
func Kernel() string { return "generic" }

// sgemm is the straightforward row-parallel implementation: each output row is scaled by beta and
// then accumulates alpha*op(A)[i,p]*op(B)[p,:] for p = 0..k-1 in order.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	t := min(Threads(), m)
	var wg sync.WaitGroup
	for w := range t {
		lo, hi := w*m/t, (w+1)*m/t
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				row := c[i*ldc : i*ldc+n]
				scaleRow(row, beta)
				for p := range k {
					var av float32
					if transA {
						av = alpha * a[p*lda+i]
					} else {
						av = alpha * a[i*lda+p]
					}
					if transB {
						for j := range row {
							row[j] += av * b[j*ldb+p]
						}
						continue
					}
					for j, bv := range b[p*ldb : p*ldb+n] {
						row[j] += av * bv
					}
				}
			}
		})
	}
	wg.Wait()
}

// scaleRow multiplies row by beta, writing zeros (not NaN*0) when beta is 0.
func scaleRow(row []float32, beta float32) {
	switch beta {
	case 0:
		clear(row)
	case 1:
	default:
		for j := range row {
			row[j] *= beta
		}
	}
}
