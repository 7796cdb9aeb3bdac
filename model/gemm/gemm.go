package gemm

import (
	"runtime"
	"sync/atomic"
)

// threads is the number of goroutines Sgemm may use; see SetThreads.
var threads atomic.Int64

func init() { threads.Store(int64(runtime.GOMAXPROCS(0))) }

// SetThreads sets how many goroutines Sgemm may use (default runtime.GOMAXPROCS(0)) and returns
// the previous value. Values below 1 are treated as 1. The result of Sgemm does not depend on it.
func SetThreads(n int) int {
	if n < 1 {
		n = 1
	}
	return int(threads.Swap(int64(n)))
}

// Threads reports how many goroutines Sgemm may use.
func Threads() int { return int(threads.Load()) }

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices, where op(A) is m x k,
// op(B) is k x n and C is m x n; transA/transB select the transpose; lda/ldb/ldc are row strides.
//
// A is stored m x k (lda >= k) when transA is false and k x m (lda >= m) when it is true; B is
// stored k x n (ldb >= n) or n x k (ldb >= k) likewise. When beta is 0, C is not read (NaNs in C
// are overwritten); when alpha is 0 or k is 0, A and B are not read. C must not overlap A or B.
// The result is bit-identical for every thread count. Sgemm panics when a
// dimension is negative or a stride or slice is too small, as the BLAS reference does.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	sgemm(*current.Load(), threadsFor(m, n, k), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// threadsFor is how many goroutines a call of 2*m*n*k FLOPs may use: Threads(), fewer for
// small calls.
func threadsFor(m, n, k int) int { return min(Threads(), max(1, 2*m*n*k/minFlopsPerThread)) }
