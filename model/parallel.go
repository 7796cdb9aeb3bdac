package model

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/whorl-ml/whorl/model/gemm"
)

// workers is the number of goroutines the element-wise, BatchNorm and pooling loops use.
var workers atomic.Int64

func init() { workers.Store(int64(runtime.GOMAXPROCS(0))) }

// SetThreads sets how many goroutines the package (and its GEMMs) may use and returns the
// previous value. Values below 1 are treated as 1. Results never depend on it.
func SetThreads(n int) int {
	n = max(n, 1)
	gemm.SetThreads(n)
	return int(workers.Swap(int64(n)))
}

// Threads reports how many goroutines the package may use.
func Threads() int { return int(workers.Load()) }

// sgemm is the package's single matrix-multiply entry point (row-major, see gemm.Sgemm).
var sgemm = gemm.Sgemm

// sgemmRows is the entry point for a GEMM whose A is built block by block (gemm.SgemmRows).
var sgemmRows = gemm.SgemmRows

// sgemmRowsB is the entry point for a GEMM whose B is built block by block (gemm.SgemmRowsB).
var sgemmRowsB = gemm.SgemmRowsB

// parallelFor splits [0, n) into at most Threads() contiguous ranges and runs fn on each in its
// own goroutine, returning when all are done. Work below grain items runs inline.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	t := min(Threads(), max(n/max(grain, 1), 1))
	if t <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range t {
		lo, hi := w*n/t, (w+1)*n/t
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}
