package gemm

import (
	"sync"
	"unsafe"
)

// problem is one Sgemm call with the kernel that computes it.
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
	kern           kernel
}

// workspace holds one goroutine's packing buffers, 64-byte aligned.
type workspace struct {
	packA, packB, tile []float32
}

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// aligned returns s if it holds n floats, else a new slice of n floats starting on a 64-byte
// boundary.
func aligned(s []float32, n int) []float32 {
	if len(s) >= n {
		return s
	}
	buf := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&buf[0]))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return buf[off : off+n]
}

// fit sizes the buffers for kernel kn.
func (w *workspace) fit(kn *kernel) {
	mc := roundUp(kn.mc, kn.mr)
	nc := roundUp(kn.nc, kn.nr)
	w.packA = aligned(w.packA, mc*kn.kc)
	w.packB = aligned(w.packB, nc*kn.kc)
	w.tile = aligned(w.tile, kn.mr*kn.nr)
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// block computes the rows i0..i1-1 and columns j0..j1-1 of C; i0 is a multiple of mr and j0 of
// nr, so the register tiles sit at the same places whatever the partition.
func (pr *problem) block(w *workspace, i0, i1, j0, j1 int) {
	kn := &pr.kern
	for jc := j0; jc < j1; jc += kn.nc {
		nc := min(kn.nc, j1-jc)
		for pc := 0; pc < pr.k; pc += kn.kc {
			kc := min(kn.kc, pr.k-pc)
			beta := pr.beta
			if pc > 0 {
				beta = 1
			}
			packB(w.packB, pr.b, pr.ldb, pr.transB, pc, kc, jc, nc, kn.nr)
			for ic := i0; ic < i1; ic += kn.mc {
				mc := min(kn.mc, i1-ic)
				packA(w.packA, pr.a, pr.lda, pr.transA, ic, mc, pc, kc, kn.mr)
				pr.macro(w, ic, mc, jc, nc, kc, beta)
			}
		}
	}
}

// macro runs the micro-kernel over the packed mc x kc block of A and kc x nc block of B.
func (pr *problem) macro(w *workspace, ic, mc, jc, nc, kc int, beta float32) {
	kn := &pr.kern
	for jr := 0; jr < nc; jr += kn.nr {
		cols := min(kn.nr, nc-jr)
		bp := &w.packB[jr*kc]
		for ir := 0; ir < mc; ir += kn.mr {
			rows := min(kn.mr, mc-ir)
			ap := &w.packA[ir*kc]
			off := (ic+ir)*pr.ldc + jc + jr
			if rows == kn.mr && cols == kn.nr {
				kn.fn(kc, ap, bp, &pr.c[off], pr.ldc, pr.alpha, beta)
				continue
			}
			pr.edge(w, kc, ap, bp, off, rows, cols, beta)
		}
	}
}

// edge computes a partial tile through the workspace tile so that the kernel never touches C
// outside the matrix; the arithmetic is the kernel's own.
func (pr *problem) edge(w *workspace, kc int, ap, bp *float32, off, rows, cols int, beta float32) {
	nr := pr.kern.nr
	if beta != 0 {
		for r := range rows {
			copy(w.tile[r*nr:r*nr+cols], pr.c[off+r*pr.ldc:])
		}
	}
	pr.kern.fn(kc, ap, bp, &w.tile[0], nr, pr.alpha, beta)
	for r := range rows {
		copy(pr.c[off+r*pr.ldc:off+r*pr.ldc+cols], w.tile[r*nr:r*nr+cols])
	}
}
