package model

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRowKernelsMatchGo checks the dispatching row kernels (assembly where available) against the
// portable Go versions, for channel counts that do and do not suit the vector path.
func TestRowKernelsMatchGo(t *testing.T) {
	for _, c := range []int{8, 24, 96, 5, 13} {
		rng := rand.New(rand.NewPCG(uint64(c), 1))
		const rows = 37
		y, g, z := randSlice(rng, rows*c), randSlice(rng, rows*c), randSlice(rng, rows*c)
		for i := range z {
			z[i] = max(z[i], 0)
		}
		p1, p2, p3 := randSlice(rng, c), randSlice(rng, c), randSlice(rng, c)

		za, zb := make([]float32, rows*c), make([]float32, rows*c)
		bnApply(y, za, p1, p2, rows)
		bnApplyGo(y, zb, p1, p2, rows)
		near(t, "apply", za, zb)

		s1a, s2a, s1b, s2b := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
		bnStats(y, p1, s1a, s2a, rows)
		bnStatsGo(y, p1, s1b, s2b, rows)
		near(t, "stats s1", s1a, s1b)
		near(t, "stats s2", s2a, s2b)

		ga, gb := slices.Clone(g), slices.Clone(g)
		da, xa, db, xb := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
		bnBackReduce(ga, y, z, p1, da, xa, rows)
		bnBackReduceGo(gb, y, z, p1, db, xb, rows)
		near(t, "back g", ga, gb)
		near(t, "back sdy", da, db)
		near(t, "back sdx", xa, xb)

		oa, ob := slices.Clone(p1), slices.Clone(p1)
		aa, ab := make([]int32, c), make([]int32, c)
		maxStep(oa, aa, p2, 7)
		maxStepGo(ob, ab, p2, 7)
		near(t, "max step", oa, ob)
		if !slices.Equal(aa, ab) {
			t.Errorf("max step arg: %v, want %v", aa, ab)
		}
		addTo(oa, p3)
		addToGo(ob, p3)
		near(t, "add", oa, ob)

		ga, gb = slices.Clone(g), slices.Clone(g)
		bnInputGrad(ga, y, p1, p2, p3, rows)
		bnInputGradGo(gb, y, p1, p2, p3, rows)
		near(t, "input grad", ga, gb)
	}
}

// near fails unless a and b agree within 1e-5 of b's largest magnitude (FMA rounding differs).
func near(t *testing.T, name string, a, b []float32) {
	t.Helper()
	if e := relErr(a, b); e > 1e-5 {
		t.Errorf("%s: relative difference %.3g", name, e)
	}
}
