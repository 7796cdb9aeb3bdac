package gemm

import (
	"sync"
	"unsafe"
)

// residentCBytes bounds the mc x nc block of C kept in L2 while the B-resident loop order sums
// all of K.
const residentCBytes = 512 << 10

// residentFits reports whether the B-resident loop order suits k steps and ncPad columns:
// the packed B (k x ncPad) fits kn.residentBBytes and an mc x ncPad block of C residentCBytes.
func (kn *kernel) residentFits(k, ncPad int) bool {
	return k*ncPad*4 <= kn.residentBBytes && kn.mc*ncPad*4 <= residentCBytes
}

// problem is one Sgemm call with the kernel that computes it.
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
	rows           Rows // when set, A comes from rows (SgemmRows) and a is nil
	rowsB          Rows // when set, B comes from rowsB (SgemmRowsB) and b is nil
	kern           kernel
	id             uint64 // distinct for every call
}

// workspace holds one goroutine's packing buffers, 64-byte aligned.
type workspace struct {
	packA, packB, tile []float32
	rowsA, rowsB       []float32 // the blocks of A and B that Rows filled (SgemmRows, SgemmRowsB)
	// packedFor, packedJ0 and packedJ1 say that packB holds all of K for the columns
	// packedJ0..packedJ1-1 of the call numbered packedFor (see residentB).
	packedFor          uint64
	packedJ0, packedJ1 int
}

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// aligned returns s if it holds n floats, else a new slice of n floats starting on a 64-byte
// boundary.
func aligned(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	buf := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&buf[0]))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return buf[off : off+n]
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// block computes the rows i0..i1-1 and columns j0..j1-1 of C; i0 is a multiple of mr and j0 of
// nr, so the register tiles sit at the same places whatever the partition.
func (pr *problem) block(w *workspace, i0, i1, j0, j1 int) {
	kn := &pr.kern
	w.packA = aligned(w.packA, roundUp(kn.mc, kn.mr)*kn.kc)
	w.tile = aligned(w.tile, kn.mr*kn.nr)
	for jc := j0; jc < j1; jc += kn.nc {
		nc := min(kn.nc, j1-jc)
		ncPad := roundUp(nc, kn.nr)
		if kn.residentFits(pr.k, ncPad) {
			pr.residentB(w, i0, i1, jc, nc, ncPad)
			continue
		}
		w.packB = aligned(w.packB, ncPad*kn.kc)
		w.packedFor = 0
		inPlace := !pr.transB && i1-i0 <= kn.inPlaceBRows*kn.mr
		for pc := 0; pc < pr.k; pc += kn.kc {
			kc := min(kn.kc, pr.k-pc)
			src := pr.bSource(w, pc, kc, jc, nc)
			bb := bBlock{packed: w.packB, kc: kc, nr: kn.nr, full: nc}
			if inPlace {
				bb = pr.inPlaceB(w, &src, pc, kc, jc, nc)
			} else {
				packB(w.packB, src.b, src.ldb, pr.transB, pc-src.p0, kc, jc-src.j0, nc, kn.nr)
			}
			for ic := i0; ic < i1; ic += kn.mc {
				pr.macro(w, ic, min(kn.mc, i1-ic), pc, kc, jc, nc, &bb)
			}
		}
	}
}

// bBlock locates the micro-panels of the kc x nc block of op(B) being multiplied: packed
// panels at packed[jr*kc] (step stride nr), or, for an untransposed B read in place, the
// full-width panels at b[off+jr] (step stride ldb) and a partial last panel packed at packed[0].
type bBlock struct {
	packed  []float32
	kc, nr  int
	full    int // columns before this offset are in full panels
	b       []float32
	off     int
	ldb     int
	inPlace bool
}

// panel returns the micro-panel of columns jr..jr+nr-1 and its step stride.
func (bb *bBlock) panel(jr int) (*float32, int) {
	switch {
	case !bb.inPlace:
		return &bb.packed[jr*bb.kc], bb.nr
	case jr < bb.full:
		return &bb.b[bb.off+jr], bb.ldb
	default:
		return &bb.packed[0], bb.nr
	}
}

// inPlaceB returns the block of an untransposed B read in place (from memory or from the block
// Rows filled), packing only a partial last panel (reading it in place could run past the end).
func (pr *problem) inPlaceB(w *workspace, src *bSource, pc, kc, jc, nc int) bBlock {
	nr := pr.kern.nr
	full := nc / nr * nr
	if full < nc {
		packB(w.packB, src.b, src.ldb, false, pc-src.p0, kc, jc+full-src.j0, nc-full, nr)
	}
	return bBlock{packed: w.packB, kc: kc, nr: nr, full: full, b: src.b, off: (pc-src.p0)*src.ldb + jc - src.j0,
		ldb: src.ldb, inPlace: true}
}

// bSource is where op(B) is read: element (p, j) at b[(p-p0)*ldb+j-j0] (untransposed; p0 and
// j0 are the corner of a block that Rows filled) or b[j*ldb+p] (transposed, never filled).
type bSource struct {
	b      []float32
	ldb    int
	p0, j0 int
}

// bSource returns B itself, or with Rows the kc x nc block at (pc, jc) filled into the
// goroutine's buffer.
func (pr *problem) bSource(w *workspace, pc, kc, jc, nc int) bSource {
	if pr.rowsB == nil {
		return bSource{b: pr.b, ldb: pr.ldb}
	}
	w.rowsB = aligned(w.rowsB, kc*nc)
	pr.rowsB(w.rowsB, pc, kc, jc, nc)
	return bSource{b: w.rowsB, ldb: nc, p0: pc, j0: jc}
}

// residentB packs all of K for the columns jc..jc+nc-1 once, then sums each mc-row block of C
// over all of K before moving on, so that the block of C stays in L2 (best when N is small).
func (pr *problem) residentB(w *workspace, i0, i1, jc, nc, ncPad int) {
	kn := &pr.kern
	if w.packedFor != pr.id || w.packedJ0 != jc || w.packedJ1 != jc+nc {
		w.packB = aligned(w.packB, ncPad*pr.k)
		for pc := 0; pc < pr.k; pc += kn.kc {
			kc := min(kn.kc, pr.k-pc)
			src := pr.bSource(w, pc, kc, jc, nc)
			packB(w.packB[pc*ncPad:], src.b, src.ldb, pr.transB, pc-src.p0, kc, jc-src.j0, nc, kn.nr)
		}
		w.packedFor, w.packedJ0, w.packedJ1 = pr.id, jc, jc+nc
	}
	for ic := i0; ic < i1; ic += kn.mc {
		for pc := 0; pc < pr.k; pc += kn.kc {
			kc := min(kn.kc, pr.k-pc)
			bb := bBlock{packed: w.packB[pc*ncPad:], kc: kc, nr: kn.nr, full: nc}
			pr.macro(w, ic, min(kn.mc, i1-ic), pc, kc, jc, nc, &bb)
		}
	}
}

// macro runs the micro-kernels over rows ic..ic+mc-1 and columns jc..jc+nc-1 of C for the
// steps pc..pc+kc-1, with that block of B in bb. Full row tiles read A in place when
// the kernel can; partial ones (and all of A when it cannot) are packed first. With Rows, A is
// first filled for the block and then read from there exactly as from memory.
func (pr *problem) macro(w *workspace, ic, mc, pc, kc, jc, nc int, bb *bBlock) {
	kn := &pr.kern
	src := aSource{a: pr.a, lda: pr.lda}
	if pr.rows != nil {
		blk, ld := pr.fillA(w, ic, mc, pc, kc)
		src = aSource{a: blk, lda: ld, i0: ic, p0: pc}
	}
	packAll := !pr.transA && kn.rowMajor == nil
	edge := mc % kn.mr
	if packAll {
		packA(w.packA, src.a, src.lda, pr.transA, ic-src.i0, mc, pc-src.p0, kc, kn.mr)
	} else if edge != 0 {
		packA(w.packA, src.a, src.lda, pr.transA, ic+mc-edge-src.i0, edge, pc-src.p0, kc, kn.mr)
	}
	beta := pr.beta
	if pc > 0 {
		beta = 1
	}
	for jr := 0; jr < nc; jr += kn.nr {
		cols := min(kn.nr, nc-jr)
		bp, ldb := bb.panel(jr)
		for ir := 0; ir < mc; ir += kn.mr {
			rows := min(kn.mr, mc-ir)
			ap, lda, rowMajor := pr.aTile(w, &src, packAll, rows, ic+ir, ir, pc, kc)
			pr.tileAt(w, kc, ap, lda, rowMajor, bp, ldb, ic+ir, jc+jr, rows, cols, beta)
		}
	}
}

// aSource is where op(A) is read: element (i, p) at a[(i-i0)*lda+p-p0] (untransposed; i0 and
// p0 are the corner of a block that Rows filled) or a[p*lda+i] (transposed, never filled).
type aSource struct {
	a      []float32
	lda    int
	i0, p0 int
}

// aTile returns where the kernel reads the row tile of op(A) starting at row i (offset ir in
// its mc block), step pc: the packed block, the packed partial tile, or A in place (step-major
// when transposed, row-major otherwise).
func (pr *problem) aTile(w *workspace, src *aSource, packAll bool, rows, i, ir, pc, kc int) (ap *float32, lda int, rowMajor bool) {
	switch {
	case packAll:
		return &w.packA[ir*kc], pr.kern.mr, false
	case rows < pr.kern.mr:
		return &w.packA[0], pr.kern.mr, false
	case pr.transA:
		return &src.a[pc*src.lda+i], src.lda, false
	default:
		return &src.a[(i-src.i0)*src.lda+pc-src.p0], src.lda, true
	}
}

// tileAt computes the rows x cols tile of C at (i, j) with the narrowest kernel that covers it;
// a tile with fewer rows (or, unless the kernel masks, fewer columns) goes through the
// workspace tile so that the kernel never touches C outside the matrix. The arithmetic of every
// element is the same whichever path it takes.
func (pr *problem) tileAt(w *workspace, kc int, ap *float32, lda int, rowMajor bool, bp *float32, ldb, i, j, rows, cols int, beta float32) {
	kn := &pr.kern
	fn, width := kn.stepMajor, kn.nr
	if rowMajor {
		fn = kn.rowMajor
	}
	if cols <= kn.nr/2 && kn.halfStep != nil {
		fn, width = kn.halfStep, kn.nr/2
		if rowMajor {
			fn = kn.halfRow
		}
	}
	off := i*pr.ldc + j
	if rows == kn.mr && (cols == width || kn.masked) {
		fn(kc, ap, lda, bp, ldb, &pr.c[off], pr.ldc, pr.alpha, beta, cols)
		return
	}
	nr := kn.nr
	if beta != 0 {
		for r := range rows {
			copy(w.tile[r*nr:r*nr+cols], pr.c[off+r*pr.ldc:])
		}
	}
	fn(kc, ap, lda, bp, ldb, &w.tile[0], nr, pr.alpha, beta, width)
	for r := range rows {
		copy(pr.c[off+r*pr.ldc:off+r*pr.ldc+cols], w.tile[r*nr:r*nr+cols])
	}
}
