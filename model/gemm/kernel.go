package gemm

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// kernelFunc computes one mr x w tile of C (w = nr, or nr/2 for a half kernel) from mr rows of
// op(A) and w columns of op(B), whose step p is at b[p*ldb] (a packed micro-panel with ldb = nr,
// or B itself). A step-major kernel reads op(A)[r,p] at a[p*lda+r] (a packed panel has lda = mr;
// a transposed A is read in place); a row-major kernel reads it at a[r*lda+p] (an untransposed
// A read in place). The kernel sets
// C = alpha*acc when beta is 0 (C is not read) and C = alpha*acc + beta*C otherwise, where
// acc[r][j] sums op(A)[r,p]*b[p][j] for p = 0..k-1 in that order. c points at the tile's first
// element; ldc is C's row stride. A masking kernel (kernel.masked) reads and writes only the
// first cols columns of C; the others always write the whole tile.
type kernelFunc func(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

// kernel is one micro-kernel family with its register-tile shape and the cache blocking that
// suits it.
type kernel struct {
	name   string
	mr, nr int // register tile: rows and columns of C per call
	mc, kc int // A block (mc x kc) kept in L2, B micro-panel (kc x nr) in L1
	nc     int // B block (kc x nc) kept in L3
	// inPlaceBRows is the most row tiles a block may have for an untransposed B to be read in
	// place rather than packed: with few row tiles, packing is not paid back by reuse.
	inPlaceBRows int
	// residentBBytes is the most a column block's packed B (all of K) may take for the
	// B-resident loop order (see residentFits); 0 disables it.
	residentBBytes int
	// unitRows is the least rows of a work unit when a goroutine's share of C is cut into
	// several units, so that a goroutine that falls behind (the machine is shared) leaves its
	// remaining units to the others.
	unitRows int
	// stepMajor and rowMajor compute a full mr x nr tile; rowMajor may be nil, and then an
	// untransposed A is packed first.
	stepMajor, rowMajor kernelFunc
	// halfStep and halfRow compute an mr x nr/2 tile (the left half of a B panel); nil when the
	// kernel has none, and then narrow edge tiles use the full kernels.
	halfStep, halfRow kernelFunc
	// masked says that the kernels honour cols, so column-edge tiles need no scratch tile.
	masked bool
}

// generic is the portable pure-Go kernel, always available.
var generic = kernel{
	name: "generic", mr: 4, nr: 4, mc: 128, kc: 256, nc: 4096,
	unitRows: 512, residentBBytes: 4 << 20, stepMajor: kernGeneric, masked: true,
}

// kernels lists the kernels this CPU can run, fastest first; generic is always last.
var kernels = append(archKernels(), generic)

// best is the fastest kernel this CPU runs; current is the one Sgemm uses (best unless
// SetKernel chose another).
var (
	best    = kernels[0]
	current atomic.Pointer[kernel]
)

func init() { current.Store(&best) }

// ErrUnknownKernel is returned by SetKernel for a kernel name this CPU cannot run.
var ErrUnknownKernel = errors.New("gemm: kernel not available on this CPU")

// Kernel names the micro-kernel Sgemm uses: the one selected at start-up for this CPU
// ("avx512", "avx2", "generic") unless SetKernel chose another.
func Kernel() string { return current.Load().name }

// Kernels lists the micro-kernels this CPU can run, fastest first ("generic" is always last).
func Kernels() []string {
	names := make([]string, len(kernels))
	for i, kn := range kernels {
		names[i] = kn.name
	}
	return names
}

// SetKernel makes Sgemm use the named micro-kernel (one of Kernels; "" restores the fastest),
// for benchmarks and for checking the fallbacks on a machine that has a faster kernel. Results
// are reproducible for a given kernel, not across kernels.
func SetKernel(name string) error {
	if name == "" {
		current.Store(&best)
		return nil
	}
	for i := range kernels {
		if kernels[i].name == name {
			current.Store(&kernels[i])
			return nil
		}
	}
	return fmt.Errorf("set kernel %q (have %v): %w", name, Kernels(), ErrUnknownKernel)
}

// kernGeneric is the 4x4 pure-Go step-major micro-kernel. Its sixteen accumulators are separate
// variables so that the compiler keeps them in registers.
func kernGeneric(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int) {
	as := unsafe.Slice(a, (k-1)*lda+4)
	bs := unsafe.Slice(b, (k-1)*ldb+4)
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	for p := 0; p < k; p++ {
		ap, bp := as[p*lda:p*lda+4:p*lda+4], bs[p*ldb:p*ldb+4:p*ldb+4]
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00, c01, c02, c03 = c00+a0*b0, c01+a0*b1, c02+a0*b2, c03+a0*b3
		c10, c11, c12, c13 = c10+a1*b0, c11+a1*b1, c12+a1*b2, c13+a1*b3
		c20, c21, c22, c23 = c20+a2*b0, c21+a2*b1, c22+a2*b2, c23+a2*b3
		c30, c31, c32, c33 = c30+a3*b0, c31+a3*b1, c32+a3*b2, c33+a3*b3
	}
	if cols < 4 {
		storePartial(unsafe.Slice(c, 3*ldc+cols), ldc, cols, alpha, beta, [4][4]float32{
			{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}})
		return
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	storeRow(cs[0:4:4], c00, c01, c02, c03, alpha, beta)
	storeRow(cs[ldc:ldc+4:ldc+4], c10, c11, c12, c13, alpha, beta)
	storeRow(cs[2*ldc:2*ldc+4:2*ldc+4], c20, c21, c22, c23, alpha, beta)
	storeRow(cs[3*ldc:3*ldc+4:3*ldc+4], c30, c31, c32, c33, alpha, beta)
}

// storePartial writes the first cols columns of alpha*acc (+ beta*C) into the 4-row tile c.
func storePartial(c []float32, ldc, cols int, alpha, beta float32, acc [4][4]float32) {
	for r := range 4 {
		for j := range cols {
			if beta == 0 {
				c[r*ldc+j] = alpha * acc[r][j]
			} else {
				c[r*ldc+j] = float32(alpha*acc[r][j]) + beta*c[r*ldc+j]
			}
		}
	}
}

// storeRow writes alpha*(x0..x3) (+ beta*row) into row.
func storeRow(row []float32, x0, x1, x2, x3, alpha, beta float32) {
	if beta == 0 {
		row[0], row[1], row[2], row[3] = alpha*x0, alpha*x1, alpha*x2, alpha*x3
		return
	}
	row[0] = float32(alpha*x0) + beta*row[0]
	row[1] = float32(alpha*x1) + beta*row[1]
	row[2] = float32(alpha*x2) + beta*row[2]
	row[3] = float32(alpha*x3) + beta*row[3]
}
