package experiment

import (
	"math"
	"sort"
)

// knnClassifier votes among the k labeled rows of a memory bank most
// similar in cosine similarity to a query, each vote weighted
// exp(similarity/temperature): the weighted kNN of DINO and solo-learn.
type knnClassifier struct {
	bank        matrix // L2-normalised rows
	labels      []int
	classes, k  int
	temperature float64
}

// newKNN builds a classifier over the rows of bank (copied, normalised).
func newKNN(bank matrix, labels []int, classes, k int, temperature float64) *knnClassifier {
	return &knnClassifier{bank: normalizeRows(bank), labels: labels, classes: classes, k: min(k, bank.n),
		temperature: temperature}
}

// normalizeRows returns a copy of m with every row scaled to unit length (a
// zero row stays zero).
func normalizeRows(m matrix) matrix {
	out := matrix{n: m.n, dim: m.dim, v: append([]float64(nil), m.v...)}
	for i := range out.n {
		r := out.row(i)
		if norm := math.Sqrt(dot(r, r)); norm > 0 {
			for j := range r {
				r[j] /= norm
			}
		}
	}
	return out
}

// neighbour is a bank row and its similarity to the query.
type neighbour struct {
	row int
	sim float64
}

// predict returns the class of query (any length-dim vector).
func (c *knnClassifier) predict(query []float64) int {
	q := normalizeRows(matrix{n: 1, dim: len(query), v: query}).v
	nb := make([]neighbour, c.bank.n)
	for i := range c.bank.n {
		nb[i] = neighbour{row: i, sim: dot(q, c.bank.row(i))}
	}
	// The most similar first; equal similarities by bank order, so the
	// vote never depends on the sort's internals.
	sort.Slice(nb, func(a, b int) bool {
		if nb[a].sim != nb[b].sim {
			return nb[a].sim > nb[b].sim
		}
		return nb[a].row < nb[b].row
	})
	votes := make([]float64, c.classes)
	for _, n := range nb[:c.k] {
		votes[c.labels[n.row]] += math.Exp(n.sim / c.temperature)
	}
	return argmax(votes)
}

// accuracy is the share of rows of x whose predicted class is labels'.
func (c *knnClassifier) accuracy(x matrix, labels []int) float64 {
	if x.n == 0 {
		return 0
	}
	ok := 0
	for i := range x.n {
		if c.predict(x.row(i)) == labels[i] {
			ok++
		}
	}
	return float64(ok) / float64(x.n)
}
