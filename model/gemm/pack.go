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
// dst[p*w+r] = src[r*ld+p]; lanes n..w-1 are set to zero. Four lanes are filled per pass so that
// each step writes 16 contiguous bytes.
func packTranspose(dst, src []float32, ld, n, steps, w int) {
	r := 0
	for ; r+4 <= n; r += 4 {
		s0 := src[r*ld : r*ld+steps]
		s1 := src[(r+1)*ld : (r+1)*ld+steps]
		s2 := src[(r+2)*ld : (r+2)*ld+steps]
		s3 := src[(r+3)*ld : (r+3)*ld+steps]
		for p := range s0 {
			d := dst[p*w+r : p*w+r+4 : p*w+r+4]
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
		}
	}
	for ; r < n; r++ {
		s := src[r*ld : r*ld+steps]
		for p, v := range s {
			dst[p*w+r] = v
		}
	}
	if n < w {
		for p := range steps {
			clear(dst[p*w+n : (p+1)*w])
		}
	}
}
