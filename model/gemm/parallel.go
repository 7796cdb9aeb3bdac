package gemm

import (
	"sync"
	"sync/atomic"
)

// minFlopsPerThread is the least work (2*m*n*k) worth a goroutine of its own.
const minFlopsPerThread = 1 << 21

// maxUnitsPerThread bounds how many units each goroutine's share is cut into.
const maxUnitsPerThread = 4

// calls numbers the problems, so that a workspace knows which call its packed B belongs to.
var calls atomic.Uint64

// sgemm computes the checked, non-empty call with kernel kn on up to threads goroutines.
// Partitions are unit-tested through this function, so it does not cap threads by size.
func sgemm(kn kernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	run(kn, threads, problem{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc})
}

// run computes the non-empty problem pr with kernel kn on up to threads goroutines.
func run(kn kernel, threads int, pr problem) {
	if pr.k == 0 || pr.alpha == 0 {
		scale(pr.c, pr.ldc, pr.m, pr.n, pr.beta)
		return
	}
	pr.kern, pr.id = kn, calls.Add(1)
	m, n, k := pr.m, pr.n, pr.k
	tm, tn := ceilDiv(m, kn.mr), ceilDiv(n, kn.nr)
	pm, pn := partition(tm, tn, threads, kn)
	if pm*pn > 1 {
		pm *= min(max(1, tm/pm*kn.mr/unitRows(&kn, k, ceilDiv(tn, pn)*kn.nr)), maxUnitsPerThread)
	}
	us := units{pm: pm, pn: pn, tm: tm, tn: tn}
	if workers := min(threads, pm*pn); workers > 1 {
		us.parallel(pr, workers)
		return
	}
	w := workspaces.Get().(*workspace)
	for u := range pm * pn {
		us.run(&pr, w, u)
	}
	workspaces.Put(w)
}

// unitRows returns the least rows of a work unit for k steps and a column share of ncols:
// kn.unitRows, or a quarter of it when the B-resident order applies, since a goroutine then
// packs B once for all its units.
func unitRows(kn *kernel, k, ncols int) int {
	if kn.residentFits(k, roundUp(min(ncols, kn.nc), kn.nr)) {
		return max(kn.unitRows/4, kn.mr)
	}
	return kn.unitRows
}

// units is a call's pm x pn grid of work units over the tm x tn register tiles of C.
type units struct{ pm, pn, tm, tn int }

// run computes unit u (units are numbered down the rows first, so consecutive units share
// their columns and a goroutine's packed B).
func (us *units) run(pr *problem, w *workspace, u int) {
	kn := &pr.kern
	um, un := u%us.pm, u/us.pm
	i0, i1 := min(pr.m, us.tm*um/us.pm*kn.mr), min(pr.m, us.tm*(um+1)/us.pm*kn.mr)
	j0, j1 := min(pr.n, us.tn*un/us.pn*kn.nr), min(pr.n, us.tn*(un+1)/us.pn*kn.nr)
	if i0 < i1 && j0 < j1 {
		pr.block(w, i0, i1, j0, j1)
	}
}

// parallel computes all units on the given number of goroutines (this one included), each
// taking the next unit until none is left, and returns when all are done.
func (us units) parallel(pr problem, workers int) {
	var next atomic.Int64 // the next unit to take
	work := func() {
		w := workspaces.Get().(*workspace)
		defer workspaces.Put(w)
		for u := int(next.Add(1)) - 1; u < us.pm*us.pn; u = int(next.Add(1)) - 1 {
			us.run(&pr, w, u)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
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
