package gemm

import "sync"

// minFlopsPerThread is the least work (2*m*n*k) worth a goroutine of its own.
const minFlopsPerThread = 1 << 21

// sgemm computes the checked, non-empty call with kernel kn on up to threads goroutines.
// Partitions are unit-tested through this function, so it does not cap threads by size.
func sgemm(kn kernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if k == 0 || alpha == 0 {
		scale(c, ldc, m, n, beta)
		return
	}
	pr := &problem{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc, kern: kn}
	tm, tn := ceilDiv(m, kn.mr), ceilDiv(n, kn.nr)
	pm, pn := partition(tm, tn, threads, kn)
	var wg sync.WaitGroup
	for u := range pm * pn {
		um, un := u/pn, u%pn
		i0, i1 := min(m, tm*um/pm*kn.mr), min(m, tm*(um+1)/pm*kn.mr)
		j0, j1 := min(n, tn*un/pn*kn.nr), min(n, tn*(un+1)/pn*kn.nr)
		if i0 >= i1 || j0 >= j1 {
			continue
		}
		run := func() {
			w := workspaces.Get().(*workspace)
			pr.block(w, i0, i1, j0, j1)
			workspaces.Put(w)
		}
		if u == pm*pn-1 {
			run()
			break
		}
		wg.Go(run)
	}
	wg.Wait()
}

// partition splits the tm x tn grid of register tiles among at most threads goroutines as a
// pm x pn grid of blocks, choosing the split with the least work for the busiest goroutine:
// its tiles plus the cost of packing its rows of A and columns of B.
func partition(tm, tn, threads int, kn kernel) (pm, pn int) {
	best := -1
	for p := 1; p <= threads; p++ {
		q := threads / p
		rows, cols := ceilDiv(tm, p)*kn.mr, ceilDiv(tn, q)*kn.nr
		cost := rows*cols + 16*(rows+cols)
		if best < 0 || cost < best {
			best, pm, pn = cost, p, q
		}
	}
	return pm, pn
}

func ceilDiv(x, d int) int { return (x + d - 1) / d }

// scale sets C = beta*C, writing zeros when beta is 0 so that NaNs in C do not survive.
func scale(c []float32, ldc, m, n int, beta float32) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}
