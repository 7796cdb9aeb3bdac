package gemm

import "fmt"

// checkArgs panics with a message naming the bad argument when the shapes, strides or slice
// lengths are inconsistent.
func checkArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	checkDims(m, n, k)
	checkA(transA, m, k, a, lda)
	checkBC(transB, m, n, k, b, ldb, c, ldc)
}

// checkA panics unless a holds op(A) (m x k) with stride lda.
func checkA(transA bool, m, k int, a []float32, lda int) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	checkMatrix("a", ar, ac, a, lda)
}

// checkDims panics when a dimension is negative.
func checkDims(m, n, k int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
}

// checkBC panics unless b holds op(B) (k x n) and c holds C (m x n) with their strides.
func checkBC(transB bool, m, n, k int, b []float32, ldb int, c []float32, ldc int) {
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix("b", br, bc, b, ldb)
	checkMatrix("c", m, n, c, ldc)
}

// checkMatrix panics unless s holds a rows x cols row-major matrix with row stride ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("gemm: ld%s=%d < max(1, %d columns)", name, ld, cols))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("gemm: len(%s)=%d < %d needed for %dx%d with stride %d", name, len(s), need, rows, cols, ld))
	}
}
