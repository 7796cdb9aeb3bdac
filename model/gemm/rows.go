package gemm

// Rows produces a matrix A that is never stored whole: it writes rows i0..i0+rows-1, columns
// p0..p0+kc-1 of A into dst, row-major with row stride kc. It must write every element of that
// block, the same values whenever it is asked, and be safe to call from several goroutines at
// once (each writes its own dst). A convolution's im2col matrix is the use: SgemmRows builds
// it one cache-sized block at a time, right before the micro-kernels read it.
type Rows func(dst []float32, i0, rows, p0, kc int)

// SgemmRows computes C = alpha*A*op(B) + beta*C like Sgemm with transA false, but A (m x k)
// comes from rows, one mc x kc block at a time into a per-goroutine buffer that stays in L2,
// instead of from memory. Every element of C gets exactly the arithmetic Sgemm gives it on the
// materialised A, so the result is bit-identical to Sgemm's (and so for every thread count).
// Each block of A is asked once per column block of C that a goroutine computes: once when
// N <= nc and the goroutines split C by rows (the convolution shapes).
func SgemmRows(transB bool, m, n, k int, alpha float32, rows Rows, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if rows == nil {
		panic("gemm: nil Rows")
	}
	checkDims(m, n, k)
	checkBC(transB, m, n, k, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	run(*current.Load(), threadsFor(m, n, k), problem{transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		rows: rows, b: b, c: c, ldb: ldb, ldc: ldc})
}

// SgemmRowsB computes C = alpha*op(A)*B + beta*C like Sgemm with transB false, but B (k x n)
// comes from rows, one kc x nc block at a time (read in place from the goroutine's buffer, or
// packed from it), instead of from memory; the result is bit-identical to Sgemm's. Each block
// is asked once per goroutine that computes columns of it, so a partition of C by rows asks
// for B more than once. The weight gradient of a convolution, dy^T * im2col(x), is the use.
func SgemmRowsB(transA bool, m, n, k int, alpha float32, a []float32, lda int, rows Rows, beta float32, c []float32, ldc int) {
	if rows == nil {
		panic("gemm: nil Rows")
	}
	checkDims(m, n, k)
	checkA(transA, m, k, a, lda)
	checkMatrix("c", m, n, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	run(*current.Load(), threadsFor(m, n, k), problem{transA: transA, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, rowsB: rows, c: c, lda: lda, ldb: max(n, 1), ldc: ldc})
}

// fillA has the goroutine's rows buffer hold the mc x kc block of A at (ic, pc) and returns it
// with its row stride.
func (pr *problem) fillA(w *workspace, ic, mc, pc, kc int) ([]float32, int) {
	w.rowsA = aligned(w.rowsA, pr.kern.mc*pr.kern.kc)
	blk := w.rowsA[:mc*kc]
	pr.rows(blk, ic, mc, pc, kc)
	return blk, kc
}
