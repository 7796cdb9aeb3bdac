package experiment

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// clusters draws n points per class around well separated centres (spread
// sd) in dim dimensions, with noise dimensions beyond the first classes.
func clusters(rng *rand.Rand, classes, perClass, dim int, sd float64) (matrix, []int) {
	m := matrix{n: classes * perClass, dim: dim, v: make([]float64, classes*perClass*dim)}
	labels := make([]int, m.n)
	for i := range m.n {
		labels[i] = i % classes
		r := m.row(i)
		for j := range r {
			r[j] = sd * rng.NormFloat64()
		}
		r[labels[i]] += 3
	}
	return m, labels
}

func TestStandardizerZeroMeanUnitDeviation(t *testing.T) {
	m := matrix{n: 4, dim: 3, v: []float64{1, 5, 7, 3, 5, 1, 5, 5, 2, 7, 5, 6}}
	s := fitStandardizer(m).apply(m)
	for j := range 3 {
		var sum, sq float64
		for i := range 4 {
			sum += s.row(i)[j]
			sq += s.row(i)[j] * s.row(i)[j]
		}
		wantSq := 4.0
		if j == 1 { // constant: maps to zero
			wantSq = 0
		}
		if math.Abs(sum) > 1e-12 || math.Abs(sq-wantSq) > 1e-9 {
			t.Errorf("dimension %d: sum %g, sum of squares %g, want 0 and %g", j, sum, sq, wantSq)
		}
	}
}

// TestProbeGradientFiniteDifference checks the objective's gradient against
// central differences, penalty included.
func TestProbeGradientFiniteDifference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x, y := clusters(rng, 3, 5, 4, 1)
	p := &linearProbe{classes: 3, dim: 4, w: make([]float64, 12), b: make([]float64, 3)}
	for i := range p.w {
		p.w[i] = rng.NormFloat64()
	}
	const wd, h = 0.3, 1e-6
	gw, gb := make([]float64, 12), make([]float64, 3)
	p.gradient(x, y, wd, gw, gb)
	sw, sb := make([]float64, 12), make([]float64, 3)
	for _, v := range []struct {
		name string
		par  []float64
		grad []float64
	}{{"w", p.w, gw}, {"b", p.b, gb}} {
		for i := range v.par {
			orig := v.par[i]
			v.par[i] = orig + h
			up := p.gradient(x, y, wd, sw, sb)
			v.par[i] = orig - h
			down := p.gradient(x, y, wd, sw, sb)
			v.par[i] = orig
			if num := (up - down) / (2 * h); math.Abs(num-v.grad[i]) > 1e-6*(1+math.Abs(num)) {
				t.Errorf("d/d%s[%d]: analytic %g, numeric %g", v.name, i, v.grad[i], num)
			}
		}
	}
}

// TestProbeConvergesAndSeparates checks the trained probe sits at the
// penalised optimum (small gradient) and classifies held-out clusters.
func TestProbeConvergesAndSeparates(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x, y := clusters(rng, 5, 20, 16, 1)
	xt, yt := clusters(rng, 5, 20, 16, 1)
	p := trainProbe(x, y, 5, 1e-2)
	gw, gb := make([]float64, len(p.w)), make([]float64, len(p.b))
	p.gradient(x, y, 1e-2, gw, gb)
	if g := math.Sqrt(dot(gw, gw) + dot(gb, gb)); g > 1e-3 {
		t.Errorf("gradient norm %g after training, want < 1e-3 (not converged)", g)
	}
	if acc, _ := p.evaluate(xt, yt); acc < 0.9 {
		t.Errorf("held-out accuracy %.2f on separated clusters, want >= 0.9", acc)
	}
	// Labels that carry no information: the probe cannot beat chance by much.
	for i := range yt {
		yt[i] = rng.IntN(5)
	}
	if acc, _ := p.evaluate(xt, yt); acc > 0.45 {
		t.Errorf("accuracy %.2f on random labels, want near 0.2", acc)
	}
}

// TestProbeBlockChoosesOnValidation checks the penalty choice uses the
// validation set: with no validation images the default is used.
func TestProbeBlockChoosesOnValidation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tr, ytr := clusters(rng, 3, 10, 8, 1)
	va, yva := clusters(rng, 3, 10, 8, 1)
	te, yte := clusters(rng, 3, 10, 8, 1)
	r := probeBlock(tr, va, te, ytr, yva, yte, 3)
	found := false
	for _, wd := range probeWeightDecays {
		found = found || wd == r.WeightDecay
	}
	if !found || r.ValidationAccuracy < 0.8 || r.TestAccuracy < 0.8 {
		t.Errorf("probe %+v: want a penalty of the grid and accuracies >= 0.8", *r)
	}
	r = probeBlock(tr, matrix{dim: 8}, te, ytr, nil, yte, 3)
	if r.WeightDecay != defaultProbeWeightDecay || r.ValidationAccuracy != 0 {
		t.Errorf("without validation: %+v, want the default penalty %g", *r, defaultProbeWeightDecay)
	}
}

// TestKNNWeightsVotesBySimilarity is a known answer: one very similar
// neighbour of class 0 outvotes two less similar ones of class 1 at a low
// temperature, and loses to them at a high one (an unweighted majority).
func TestKNNWeightsVotesBySimilarity(t *testing.T) {
	bank := matrix{n: 3, dim: 2, v: []float64{
		0.9, math.Sqrt(1 - 0.81), // cos 0.9 to the query (1, 0)
		0.5, math.Sqrt(0.75), // cos 0.5
		2 * 0.5, -2 * math.Sqrt(0.75), // cos 0.5, not unit length
	}}
	labels := []int{0, 1, 1}
	q := []float64{3, 0}
	if got := newKNN(bank, labels, 2, 3, 0.07).predict(q); got != 0 {
		t.Errorf("T=0.07: class %d, want 0 (exp(0.9/0.07) > 2 exp(0.5/0.07))", got)
	}
	if got := newKNN(bank, labels, 2, 3, 10).predict(q); got != 1 {
		t.Errorf("T=10: class %d, want 1 (two votes of nearly equal weight)", got)
	}
	if got := newKNN(bank, labels, 2, 1, 10).predict(q); got != 0 {
		t.Errorf("k=1: class %d, want the nearest's, 0", got)
	}
	if k := newKNN(bank, labels, 2, 20, 0.07).k; k != 3 {
		t.Errorf("k=20 over a bank of 3: k %d, want 3", k)
	}
}

// BenchmarkTrainProbe fits one probe of the size of a ResNet-18 stage-4
// probe on the flowers' labeled set (300 images, 512 features, 5 classes).
func BenchmarkTrainProbe(b *testing.B) {
	x, y := clusters(rand.New(rand.NewPCG(7, 8)), 5, 60, 512, 2)
	for b.Loop() {
		trainProbe(x, y, 5, 1e-2)
	}
}

// TestProbeBlockCVChoosesByFolds: on separated clusters the cross-validated
// accuracy is high and the chosen penalty is of the grid; with labels that
// carry no information it sits near chance (every row is held out once, so
// a probe that memorises cannot score), and the strongest penalty wins the
// ties there are.
func TestProbeBlockCVChoosesByFolds(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	x, y := clusters(rng, 5, 20, 16, 1)
	te, yte := clusters(rng, 5, 20, 16, 1)
	folds := make([]int, x.n)
	for i := range folds {
		folds[i] = (i / 5) % 4 // every class in every fold
	}
	r := probeBlockCV(x, y, te, yte, 5, folds, 4)
	if !slices.Contains(probeWeightDecays, r.WeightDecay) || r.Folds != 4 || r.ValidationAccuracy < 0.85 || r.TestAccuracy < 0.85 {
		t.Errorf("separated clusters: %+v, want a penalty of the grid, 4 folds, accuracies >= 0.85", *r)
	}
	noise := make([]int, x.n)
	for i := range noise {
		noise[i] = rng.IntN(5)
	}
	r = probeBlockCV(x, noise, te, yte, 5, folds, 4)
	if r.ValidationAccuracy > 0.4 {
		t.Errorf("random labels: cross-validated accuracy %.2f, want near 0.2", r.ValidationAccuracy)
	}
}

// TestSplitFoldStandardisesOnTrainingRows: the held-out rows are scaled
// with the other rows' statistics, not their own.
func TestSplitFoldStandardisesOnTrainingRows(t *testing.T) {
	x := matrix{n: 4, dim: 1, v: []float64{0, 2, 4, 10}}
	p := splitFold(x, []int{0, 1, 0, 1}, []int{0, 0, 0, 1}, 1)
	// Training rows 0, 2, 4: mean 2, deviation sqrt(8/3).
	want := (10 - 2) / math.Sqrt(8.0/3)
	if p.held.n != 1 || p.train.n != 3 || math.Abs(p.held.v[0]-want) > 1e-12 || p.yheld[0] != 1 {
		t.Errorf("held-out row %v (labels %v), want [%g] ([1])", p.held.v, p.yheld, want)
	}
}
