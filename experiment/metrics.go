package experiment

import (
	"fmt"
	"math"
)

// Confusion is a confusion matrix: Confusion[t][p] counts the images of true
// class t predicted as class p.
type Confusion [][]int

// NewConfusion returns an all-zero matrix for k classes.
func NewConfusion(k int) Confusion {
	c := make(Confusion, k)
	for i := range c {
		c[i] = make([]int, k)
	}
	return c
}

// ConfusionOf counts pairs of true labels and predictions over k classes.
func ConfusionOf(k int, labels, preds []int) (Confusion, error) {
	if len(labels) != len(preds) {
		return nil, fmt.Errorf("confusion matrix: %d labels but %d predictions", len(labels), len(preds))
	}
	c := NewConfusion(k)
	for i, t := range labels {
		if err := c.Add(t, preds[i]); err != nil {
			return nil, fmt.Errorf("confusion matrix, pair %d: %w", i, err)
		}
	}
	return c, nil
}

// Add counts one image of true class t predicted as p.
func (c Confusion) Add(t, p int) error {
	if t < 0 || t >= len(c) || p < 0 || p >= len(c) {
		return fmt.Errorf("class pair (%d, %d) out of range 0..%d", t, p, len(c)-1)
	}
	c[t][p]++
	return nil
}

// Total is the number of images counted.
func (c Confusion) Total() int {
	n := 0
	for _, row := range c {
		for _, v := range row {
			n += v
		}
	}
	return n
}

// Accuracy is the fraction of images on the diagonal (0 for an empty
// matrix).
func (c Confusion) Accuracy() float64 {
	n, ok := 0, 0
	for t, row := range c {
		for p, v := range row {
			n += v
			if t == p {
				ok += v
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(ok) / float64(n)
}

// PerClass is the recall of each class: the fraction of its images predicted
// correctly (0 for a class with no images).
func (c Confusion) PerClass() []float64 {
	out := make([]float64, len(c))
	for t, row := range c {
		n := 0
		for _, v := range row {
			n += v
		}
		if n > 0 {
			out[t] = float64(row[t]) / float64(n)
		}
	}
	return out
}

// MeanStd is the mean and sample standard deviation (n-1) of xs; the
// deviation of fewer than two values is 0.
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}
