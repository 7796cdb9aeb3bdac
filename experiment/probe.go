package experiment

import (
	"math"

	"gonum.org/v1/gonum/optimize"
)

// Linear-probe training: gonum's L-BFGS (as scikit-learn's
// LogisticRegression) on the mean softmax cross-entropy plus an L2 penalty
// on the weights (not the bias), from zero. The problem is strictly convex,
// so the result depends on the data and the penalty only, never on a seed.
const (
	probeMaxIters = 500
	probeGradTol  = 1e-6
)

// probeWeightDecays are the L2 penalties a probe chooses from,
// strongest first (ties go to the stronger penalty). The range is wide:
// 32-2,048 standardised features from 300 images go from needing a strong
// penalty to needing almost none.
var probeWeightDecays = []float64{1, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4}

// matrix is a row-major n x dim table of float64 features.
type matrix struct {
	n, dim int
	v      []float64
}

// row returns row i.
func (m matrix) row(i int) []float64 { return m.v[i*m.dim : (i+1)*m.dim] }

// standardizer maps features to zero mean and unit deviation per
// dimension, with the statistics of the training images (BatchNorm without
// affine, in evaluation mode).
type standardizer struct{ mean, inv []float64 }

// fitStandardizer measures m's per-dimension mean and deviation; a constant
// dimension maps to 0.
func fitStandardizer(m matrix) standardizer {
	s := standardizer{mean: make([]float64, m.dim), inv: make([]float64, m.dim)}
	for i := range m.n {
		for j, v := range m.row(i) {
			s.mean[j] += v
		}
	}
	for j := range s.mean {
		s.mean[j] /= float64(m.n)
	}
	for i := range m.n {
		for j, v := range m.row(i) {
			s.inv[j] += (v - s.mean[j]) * (v - s.mean[j])
		}
	}
	for j, ss := range s.inv {
		if sd := math.Sqrt(ss / float64(m.n)); sd > 1e-12 {
			s.inv[j] = 1 / sd
		} else {
			s.inv[j] = 0
		}
	}
	return s
}

// apply returns a standardised copy of m.
func (s standardizer) apply(m matrix) matrix {
	out := matrix{n: m.n, dim: m.dim, v: make([]float64, len(m.v))}
	for i := range m.n {
		r, o := m.row(i), out.row(i)
		for j, v := range r {
			o[j] = (v - s.mean[j]) * s.inv[j]
		}
	}
	return out
}

// linearProbe is a softmax classifier: logits = W x + b, W classes x dim.
type linearProbe struct {
	classes, dim int
	w, b         []float64
}

// logits writes the probe's logits of x into out (len classes).
func (p *linearProbe) logits(x, out []float64) {
	for c := range p.classes {
		out[c] = p.b[c] + dot(p.w[c*p.dim:(c+1)*p.dim], x)
	}
}

// trainProbe fits a probe to the labeled rows of x with L2 penalty wd.
func trainProbe(x matrix, labels []int, classes int, wd float64) *linearProbe {
	p := &linearProbe{classes: classes, dim: x.dim}
	theta := make([]float64, classes*x.dim+classes)
	p.w, p.b = theta[:classes*x.dim], theta[classes*x.dim:]
	view := func(th []float64) *linearProbe {
		return &linearProbe{classes: classes, dim: x.dim, w: th[:classes*x.dim], b: th[classes*x.dim:]}
	}
	grad := func(g, th []float64) float64 {
		return view(th).gradient(x, labels, wd, g[:classes*x.dim], g[classes*x.dim:])
	}
	prob := optimize.Problem{
		Func: func(th []float64) float64 { return grad(make([]float64, len(th)), th) },
		Grad: func(g, th []float64) { grad(g, th) },
	}
	res, err := optimize.Minimize(prob, theta, &optimize.Settings{GradientThreshold: probeGradTol, MajorIterations: probeMaxIters},
		&optimize.LBFGS{})
	if res != nil && (err == nil || res.F <= grad(make([]float64, len(theta)), theta)) {
		copy(theta, res.X) // the best point found, also when the line search gave up at the optimum's precision
	}
	return p
}

// gradient writes into gw and gb the gradient of the probe's objective on
// x (mean cross-entropy plus wd/2 ||W||^2) and returns the objective.
func (p *linearProbe) gradient(x matrix, labels []int, wd float64, gw, gb []float64) float64 {
	clear(gw)
	clear(gb)
	z := make([]float64, p.classes)
	var loss float64
	for i := range x.n {
		r := x.row(i)
		p.logits(r, z)
		softmaxInPlace(z)
		loss -= math.Log(max(z[labels[i]], 1e-300))
		z[labels[i]]--
		for c, g := range z {
			g /= float64(x.n)
			gb[c] += g
			axpy(g, r, gw[c*x.dim:(c+1)*x.dim])
		}
	}
	axpy(wd, p.w, gw)
	return loss/float64(x.n) + 0.5*wd*dot(p.w, p.w)
}

// evaluate returns the probe's accuracy and mean cross-entropy on x.
func (p *linearProbe) evaluate(x matrix, labels []int) (acc, loss float64) {
	if x.n == 0 {
		return 0, 0
	}
	z := make([]float64, p.classes)
	ok := 0
	for i := range x.n {
		p.logits(x.row(i), z)
		if argmax(z) == labels[i] {
			ok++
		}
		softmaxInPlace(z)
		loss -= math.Log(max(z[labels[i]], 1e-300))
	}
	return float64(ok) / float64(x.n), loss / float64(x.n)
}

// softmaxInPlace replaces z by its softmax.
func softmaxInPlace(z []float64) {
	top := z[argmax(z)]
	var sum float64
	for i, v := range z {
		z[i] = math.Exp(v - top)
		sum += z[i]
	}
	for i := range z {
		z[i] /= sum
	}
}

// dot is the inner product of two equal-length vectors (four partial sums).
func dot(a, b []float64) float64 {
	var s0, s1, s2, s3 float64
	b = b[:len(a)]
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy adds alpha*x to y.
func axpy(alpha float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}
