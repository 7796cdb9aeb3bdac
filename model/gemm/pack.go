package gemm

// packA copies the mc x kc block of op(A) starting at row i0, column p0 into dst as micro-panels
// of mr rows: panel q holds, for p = 0..kc-1, the mr values op(A)[i0+q*mr+r, p0+p], rows past
// mc set to zero.
func packA(dst, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int) {
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		panel := dst[ir*kc : ir*kc+mr*kc]
		if trans {
			packCopy(panel, a[(p0)*lda+i0+ir:], lda, kc, rows, mr)
		} else {
			packTranspose(panel, a[(i0+ir)*lda+p0:], lda, rows, kc, mr)
		}
	}
}

// packB copies the kc x nc block of op(B) starting at row p0, column j0 into dst as micro-panels
// of nr columns: panel q holds, for p = 0..kc-1, the nr values op(B)[p0+p, j0+q*nr+j], columns
// past nc set to zero.
func packB(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int) {
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		panel := dst[jr*kc : jr*kc+nr*kc]
		if trans {
			packTranspose(panel, b[(j0+jr)*ldb+p0:], ldb, cols, kc, nr)
		} else {
			packCopy(panel, b[p0*ldb+j0+jr:], ldb, kc, cols, nr)
		}
	}
}

// packCopy packs a panel whose source rows are the panel's steps: for p < steps, dst[p*w : p*w+n]
// = src[p*ld : p*ld+n] and dst[p*w+n : (p+1)*w] = 0.
func packCopy(dst, src []float32, ld, steps, n, w int) {
	for p := range steps {
		d := dst[p*w : (p+1)*w]
		copy(d, src[p*ld:p*ld+n])
		if n < w {
			clear(d[n:])
		}
	}
}

// packTranspose packs a panel whose source rows are the panel's lanes: for r < n and p < steps,
// dst[p*w+r] = src[r*ld+p]; lanes n..w-1 are set to zero.
func packTranspose(dst, src []float32, ld, n, steps, w int) {
	for r := range n {
		s := src[r*ld : r*ld+steps]
		d := dst[r : (steps-1)*w+r+1]
		for p, v := range s {
			d[p*w] = v
		}
	}
	for r := n; r < w; r++ {
		for p := range steps {
			dst[p*w+r] = 0
		}
	}
}
