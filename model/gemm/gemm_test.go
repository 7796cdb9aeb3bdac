package gemm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// refGemm computes the float64 reference of C = alpha*op(A)*op(B) + beta*C and the sum of
// |alpha*a*b| per element, used to scale the tolerance.
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, mag []float64) {
	want = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, g float64
			for p := range k {
				av, bv := at(a, lda, i, p, transA), at(b, ldb, p, j, transB)
				s += av * bv
				g += math.Abs(av * bv)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
				g = math.Abs(float64(alpha))*g + math.Abs(float64(beta)*float64(c[i*ldc+j]))
			} else {
				g *= math.Abs(float64(alpha))
			}
			want[i*n+j], mag[i*n+j] = v, g
		}
	}
	return want, mag
}

// at returns op(X)[i,j] of the row-major matrix x with stride ld as float64.
func at(x []float32, ld, i, j int, trans bool) float64 {
	if trans {
		return float64(x[j*ld+i])
	}
	return float64(x[i*ld+j])
}

// sameBits reports whether x and y hold the same bit patterns (NaN padding included).
func sameBits(x, y []float32) bool {
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return false
		}
	}
	return len(x) == len(y)
}

// randMatrix returns rows x cols values with row stride ld; the padding holds NaN so that a
// kernel reading or writing outside the matrix shows up.
func randMatrix(r *rand.Rand, rows, cols, ld int) []float32 {
	s := make([]float32, max(rows*ld, 1))
	for i := range s {
		s[i] = float32(math.NaN())
	}
	for i := range rows {
		for j := range cols {
			s[i*ld+j] = r.Float32()*2 - 1
		}
	}
	return s
}

// gemmCase is one call of Sgemm with its shapes and strides (pad is added to each stride).
type gemmCase struct {
	transA, transB bool
	m, n, k, pad   int
	alpha, beta    float32
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v,tB=%v,m=%d,n=%d,k=%d,pad=%d,alpha=%g,beta=%g", tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.pad, tc.alpha, tc.beta)
}

// run executes tc with the given implementation and checks it against the float64 reference.
func (tc gemmCase) run(t testing.TB, seed uint64, impl gemmFunc) []float32 {
	t.Helper()
	c, err := tc.check(seed, impl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// check executes tc with the given implementation on random operands from seed and returns C,
// or an error naming the first element that differs from the float64 reference by more than
// the rounding bound, or the first padding element of C that was written.
func (tc gemmCase) check(seed uint64, impl gemmFunc) ([]float32, error) {
	r := rand.New(rand.NewPCG(seed, 7))
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := ac+tc.pad, bc+tc.pad, tc.n+tc.pad
	lda, ldb, ldc = max(lda, 1), max(ldb, 1), max(ldc, 1)
	a := randMatrix(r, ar, ac, lda)
	b := randMatrix(r, br, bc, ldb)
	c := randMatrix(r, tc.m, tc.n, ldc)
	if tc.beta == 0 {
		for i := range tc.m {
			for j := range tc.n {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	want, mag := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	a0, b0 := slices.Clone(a), slices.Clone(b)
	impl(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	if !sameBits(a, a0) || !sameBits(b, b0) {
		return nil, fmt.Errorf("%v: A or B modified", tc)
	}
	tol := 4 * float64(tc.k+2) * 0x1p-24
	for i := range tc.m {
		for j := range tc.n {
			got, w, g := float64(c[i*ldc+j]), want[i*tc.n+j], mag[i*tc.n+j]
			if !(math.Abs(got-w) <= tol*g+1e-30) {
				return nil, fmt.Errorf("%v: C[%d,%d] = %g, want %g (tolerance %g)", tc, i, j, got, w, tol*g)
			}
		}
		for j := tc.n; j < ldc; j++ {
			if !math.IsNaN(float64(c[i*ldc+j])) {
				return nil, fmt.Errorf("%v: padding C[%d,%d] written", tc, i, j)
			}
		}
	}
	return c, nil
}

func allCases() []gemmCase {
	var cases []gemmCase
	dims := [][3]int{{1, 1, 1}, {2, 3, 4}, {7, 13, 5}, {13, 7, 33}, {33, 100, 17}, {100, 33, 64}, {65, 47, 130}, {1, 97, 9}, {97, 1, 9}, {5, 5, 0}}
	for _, d := range dims {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				cases = append(cases, gemmCase{tA, tB, d[0], d[1], d[2], 0, 1, 0})
				cases = append(cases, gemmCase{tA, tB, d[0], d[1], d[2], 3, -0.5, 1.5})
			}
		}
	}
	cases = append(cases, gemmCase{false, false, 31, 45, 29, 5, 2, 1}, gemmCase{true, true, 31, 45, 29, 1, 0, 0.5}, gemmCase{false, true, 0, 4, 4, 0, 1, 1})
	return cases
}

// gemmFunc is the signature of Sgemm.
type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// with returns Sgemm computed by kernel kn on the given number of goroutines.
func with(kn kernel, threads int) gemmFunc {
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
		if m > 0 && n > 0 {
			sgemm(kn, threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}
	}
}

// tiny returns kn with cache blocks of a few register tiles and one-tile work units, so that
// small matrices cross every block boundary (several mc, kc and nc blocks and units).
func tiny(kn kernel) kernel {
	kn.mc, kn.kc, kn.nc, kn.unitRows = 2*kn.mr, 7, 2*kn.nr, kn.mr
	return kn
}

// packed returns kn without its row-major and half-width kernels, in-place B and masking, so
// that A and B are always packed and narrow edges use the full kernel and the scratch tile.
func packed(kn kernel) kernel {
	kn.rowMajor, kn.halfStep, kn.halfRow = nil, nil, nil
	kn.inPlaceBRows, kn.masked = 0, false
	return kn
}

func TestSgemm(t *testing.T) {
	for i, tc := range allCases() {
		t.Run(tc.String(), func(t *testing.T) { tc.run(t, uint64(i), Sgemm) })
	}
}

// kernelVariant is a kernel at a blocking, path and thread count the tests run it with.
type kernelVariant struct {
	name    string
	kn      kernel
	threads int
}

// variantsOf lists how the tests run kn: its own blocking on 1 and 3 goroutines, tiny blocks on
// 1 and 2, and everything packed on 2.
func variantsOf(kn kernel) []kernelVariant {
	return []kernelVariant{{"default", kn, 1}, {"default-3threads", kn, 3}, {"tiny", tiny(kn), 1},
		{"tiny-2threads", tiny(kn), 2}, {"packed", packed(tiny(kn)), 2}}
}

func TestKernels(t *testing.T) {
	t.Logf("selected kernel %q; testing %d kernels", Kernel(), len(kernels))
	for _, kn := range kernels {
		for _, v := range variantsOf(kn) {
			t.Run(kn.name+"/"+v.name, func(t *testing.T) {
				for i, tc := range allCases() {
					tc.run(t, uint64(i), with(v.kn, v.threads))
				}
			})
		}
	}
}

func TestSgemmThreadsIdentical(t *testing.T) {
	cases := []gemmCase{{false, false, 67, 45, 130, 1, 1, 0}, {true, true, 45, 67, 70, 2, 0.5, 2}, {false, true, 130, 9, 33, 0, 1, 1}, {true, false, 130, 100, 150, 0, 1, 1}}
	for _, kn := range kernels {
		for _, tc := range cases {
			identicalAcrossThreads(t, tiny(kn), tc)
			identicalAcrossThreads(t, packed(tiny(kn)), tc)
			identicalAcrossThreads(t, kn, tc)
		}
	}
}

func TestPathsIdentical(t *testing.T) {
	for _, kn := range kernels {
		for _, tc := range []gemmCase{{false, false, 45, 75, 40, 1, 1, 0}, {true, false, 31, 40, 20, 2, 0.5, 2}, {false, true, 29, 17, 9, 0, 1, 1}} {
			direct := tc.run(t, 5, with(kn, 1))
			pk := tc.run(t, 5, with(packed(kn), 2))
			for i := range direct {
				if math.Float32bits(direct[i]) != math.Float32bits(pk[i]) {
					t.Fatalf("%s %v: C[%d] = %g in place, %g packed", kn.name, tc, i, direct[i], pk[i])
				}
			}
		}
	}
}

// identicalAcrossThreads checks that 1..4 goroutines give the same bits.
func identicalAcrossThreads(t *testing.T, kn kernel, tc gemmCase) {
	t.Helper()
	{
		var first []float32
		for th := 1; th <= 4; th++ {
			c := tc.run(t, 42, with(kn, th))
			if first == nil {
				first = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%s %v: threads=%d C[%d] = %g, threads=1 gave %g", kn.name, tc, th, i, c[i], first[i])
				}
			}
		}
	}
}

func TestSetKernel(t *testing.T) {
	defer func() {
		if err := SetKernel(""); err != nil {
			t.Fatal(err)
		}
	}()
	if got, want := Kernel(), best.name; got != want {
		t.Fatalf("Kernel() = %q, want the fastest %q", got, want)
	}
	tc := gemmCase{false, true, 31, 40, 20, 1, 1, 0.5}
	for _, name := range Kernels() {
		if err := SetKernel(name); err != nil {
			t.Fatalf("SetKernel(%q): %v", name, err)
		}
		if Kernel() != name {
			t.Fatalf("Kernel() = %q after SetKernel(%q)", Kernel(), name)
		}
		tc.run(t, 9, Sgemm)
	}
	if err := SetKernel("sse9"); !errors.Is(err, ErrUnknownKernel) {
		t.Fatalf("SetKernel(sse9) = %v, want ErrUnknownKernel", err)
	}
}

func TestSgemmConcurrentCalls(t *testing.T) {
	defer SetThreads(SetThreads(2))
	cases := []gemmCase{{false, true, 70, 50, 40, 1, 1, 0}, {true, false, 45, 67, 33, 0, 0.5, 1}, {false, false, 33, 100, 17, 2, 1, 2}, {true, true, 20, 20, 20, 0, 1, 0}}
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Go(func() {
			for range 5 {
				if _, err := tc.check(uint64(i), Sgemm); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestSgemmPublicThreads(t *testing.T) {
	defer SetThreads(SetThreads(1))
	tc := gemmCase{false, true, 200, 100, 130, 1, 1, 0} // 5.2 MFLOP: two goroutines at most
	one := tc.run(t, 3, Sgemm)
	SetThreads(3)
	if got := Threads(); got != 3 {
		t.Fatalf("Threads() = %d after SetThreads(3)", got)
	}
	if !sameBits(tc.run(t, 3, Sgemm), one) {
		t.Fatalf("%v: SetThreads(3) changed the result", tc)
	}
	if prev := SetThreads(0); prev != 3 || Threads() != 1 {
		t.Fatalf("SetThreads(0) returned %d and left %d, want 3 and 1", prev, Threads())
	}
}
