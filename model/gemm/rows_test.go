package gemm

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// rowsOf returns a Rows that copies blocks of the stored matrix a (row stride lda, m x k) and
// fails t when asked for a block outside it or with a dst of the wrong length.
func rowsOf(t *testing.T, a []float32, lda, m, k int, calls *atomic.Int64) Rows {
	return func(dst []float32, i0, rows, p0, kc int) {
		calls.Add(1)
		if i0 < 0 || rows <= 0 || i0+rows > m || p0 < 0 || kc <= 0 || p0+kc > k || len(dst) != rows*kc {
			t.Errorf("Rows asked for rows %d+%d, columns %d+%d, len(dst)=%d of a %dx%d matrix", i0, rows, p0, kc, len(dst), m, k)
			return
		}
		for r := range rows {
			copy(dst[r*kc:(r+1)*kc], a[(i0+r)*lda+p0:])
		}
	}
}

// rowsWith returns SgemmRows computed by kernel kn on the given number of goroutines.
func rowsWith(kn kernel, threads int) func(transB bool, m, n, k int, alpha float32, rows Rows, b []float32, ldb int, beta float32, c []float32, ldc int) {
	return func(transB bool, m, n, k int, alpha float32, rows Rows, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if m > 0 && n > 0 {
			run(kn, threads, problem{transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta, rows: rows, b: b, c: c, ldb: ldb, ldc: ldc})
		}
	}
}

// rowsBWith returns SgemmRowsB computed by kernel kn on the given number of goroutines.
func rowsBWith(kn kernel, threads int) func(transA bool, m, n, k int, alpha float32, a []float32, lda int, rows Rows, beta float32, c []float32, ldc int) {
	return func(transA bool, m, n, k int, alpha float32, a []float32, lda int, rows Rows, beta float32, c []float32, ldc int) {
		if m > 0 && n > 0 {
			run(kn, threads, problem{transA: transA, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, rowsB: rows, c: c, lda: lda, ldb: n, ldc: ldc})
		}
	}
}

// TestSgemmRowsMatchesSgemm checks that A (or B) produced block by block gives the bits Sgemm
// gives on the stored matrix, for every kernel, blocking, path and thread count, and that Rows
// is only asked for blocks inside the matrix.
func TestSgemmRowsMatchesSgemm(t *testing.T) {
	for _, kn := range kernels {
		for _, v := range variantsOf(kn) {
			t.Run(kn.name+"/"+v.name, func(t *testing.T) {
				for i, tc := range allCases() {
					want := tc.run(t, uint64(i), with(v.kn, v.threads))
					called := func(calls *atomic.Int64, m, n, k int, alpha float32) {
						if k > 0 && alpha != 0 && m > 0 && n > 0 && calls.Load() == 0 {
							t.Errorf("%v: Rows never called", tc)
						}
					}
					if !tc.transA {
						got := tc.run(t, uint64(i), func(_, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
							var calls atomic.Int64
							rowsWith(v.kn, v.threads)(transB, m, n, k, alpha, rowsOf(t, a, lda, m, k, &calls), b, ldb, beta, c, ldc)
							called(&calls, m, n, k, alpha)
						})
						if !sameBits(got, want) {
							t.Fatalf("%v: SgemmRows differs from Sgemm", tc)
						}
					}
					if !tc.transB {
						got := tc.run(t, uint64(i), func(transA, _ bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
							var calls atomic.Int64
							rowsBWith(v.kn, v.threads)(transA, m, n, k, alpha, a, lda, rowsOf(t, b, ldb, k, n, &calls), beta, c, ldc)
							called(&calls, m, n, k, alpha)
						})
						if !sameBits(got, want) {
							t.Fatalf("%v: SgemmRowsB differs from Sgemm", tc)
						}
					}
				}
			})
		}
	}
}

// TestSgemmRowsPublic checks the exported call against Sgemm on a convolution-like shape
// (N = 64 columns, K crossing a kc block) on two goroutines.
func TestSgemmRowsPublic(t *testing.T) {
	defer SetThreads(SetThreads(2))
	const m, n, k = 700, 64, 300
	r := rand.New(rand.NewPCG(3, 3))
	a, b := randMatrix(r, m, k, k), randMatrix(r, n, k, k)
	want, got := make([]float32, m*n), make([]float32, m*n)
	Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, want, n)
	var calls atomic.Int64
	SgemmRows(true, m, n, k, 1, rowsOf(t, a, k, m, k, &calls), b, k, 0, got, n)
	if !sameBits(got, want) {
		t.Fatal("SgemmRows differs from Sgemm")
	}
	// The weight-gradient shape: C (n x k) = A^T * B with A stored m x n and B = the rows, m x k.
	dw, dwWant := make([]float32, n*k), make([]float32, n*k)
	dy := randMatrix(r, m, n, n)
	Sgemm(true, false, n, k, m, 1, dy, n, a, k, 0, dwWant, k)
	SgemmRowsB(true, n, k, m, 1, dy, n, rowsOf(t, a, k, m, k, &calls), 0, dw, k)
	if !sameBits(dw, dwWant) {
		t.Fatal("SgemmRowsB differs from Sgemm")
	}
	defer func() {
		if p := recover(); p == nil || fmt.Sprint(p) != "gemm: nil Rows" {
			t.Fatalf("SgemmRows(nil) panicked with %v, want gemm: nil Rows", p)
		}
	}()
	SgemmRows(true, m, n, k, 1, nil, b, k, 0, got, n)
}
