// Package gemm is the single-precision matrix multiply (SGEMM) under whorl's model engine:
// every convolution (as an im2col product) and linear layer, forward and backward, is a call
// to Sgemm.
//
//	Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
//
// computes C = alpha*op(A)*op(B) + beta*C on row-major float32 matrices with BLAS semantics
// (beta == 0 overwrites C without reading it, so NaNs in C do not survive).
//
// # Design
//
// The multiply follows Goto and van de Geijn ("Anatomy of high-performance matrix
// multiplication", 2008) as BLIS and OpenBLAS do: C is cut into mr x nr register tiles, each
// computed by an assembly micro-kernel that keeps the whole tile in vector registers and adds
// one rank-1 update per step of K with fused multiply-adds. Around it, K is cut into kc steps
// (a B micro-panel of kc x nr stays in L1), rows into mc blocks (the A block stays in L2) and
// columns into nc blocks.
//
// Kernels, chosen at start-up with golang.org/x/sys/cpu (which also checks that the OS saves
// the wider registers); Kernel reports the choice, Kernels lists what the CPU can run and
// SetKernel picks another (to benchmark or check a fallback):
//
//   - "avx512": 14x32 tile, 28 of the 32 ZMM registers accumulate; mc=280, kc=256, nc=3072.
//   - "avx2":   6x16 tile (AVX2 + FMA3), 12 of the 16 YMM registers; mc=192, kc=256.
//   - "generic": 4x4 pure Go, for every other CPU and architecture.
//
// Each assembly kernel comes in four forms (gen_kernels.go writes them): A read step-major
// (a packed panel, or a transposed A in place) or row-major (an untransposed A in place), and
// full or half width (for narrow column edges such as N = 75). B is read through a stride, so
// a packed micro-panel and an untransposed B in place use the same code.
//
// What is packed: the convolution shapes here have M = batch*H*W in the tens of thousands and
// N <= 192, so A is touched once per column block and packing it would cost as much as the
// multiply; full row tiles read A in place and only a partial last row tile is packed. B is
// packed (it is reused by every row tile) unless a block has few row tiles and B is not
// transposed (the weight-gradient shapes, K huge), where it is read in place. When all of K
// for a column block fits in 4 MiB, B is packed once and each mc block of C sums the whole of
// K while it sits in L2 (the forward shapes with K = 2400 or 1728).
//
// Go's GOEXPERIMENT=simd was measured on this machine at 30-40 GFLOPS per core for such a
// kernel (issue 3: it spills the accumulators); the assembly kernel sustains about 250 GFLOPS
// per core on cached panels (BenchmarkKernel). The default build stays static: no cgo, no
// external BLAS.
//
// SgemmRows and SgemmRowsB take A (or B) as a function that writes any block of it: the
// convolutions pass their im2col matrix that way, so the GEMM builds each cache-sized block of
// patches right before it multiplies it instead of reading a matrix k*k times the activation
// from memory. The result is bit-identical to Sgemm on the stored matrix.
//
// # Determinism
//
// Sgemm returns bit-identical results whatever SetThreads says. Work is split among goroutines
// along the rows and columns of C only, in whole register tiles whose positions do not depend
// on the split; K is never split among goroutines, and each element sums its products in one
// fixed order (kc blocks in order, steps in order within a block, one fused multiply-add per
// step). Partial tiles are stored through a column mask or a scratch tile by the same kernel,
// and the in-place and packed paths feed the kernel the same values, so every element of C
// gets the same arithmetic whichever path computes it. Results may differ between kernels (and
// so between CPUs), never between runs or thread counts on one machine.
//
// # Concurrency
//
// Each call cuts C into units (a goroutine's share, cut again into up to four units of at least
// 2048 rows, or 512 when B is packed once per goroutine) that up to SetThreads goroutines pull
// from a shared counter; the call returns when all are done, so no goroutine outlives it.
// Packing buffers come from a sync.Pool, so a steady stream of calls does not allocate. Sgemm
// is safe for concurrent use.
package gemm
