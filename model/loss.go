package model

import (
	"fmt"
	"math"
)

// SoftmaxCrossEntropy returns the mean cross-entropy of logits ([n x classes]) against labels,
// the number of rows whose arg-max equals the label, and writes into dlogits the gradient of the
// mean loss multiplied by scale. It fails when a label is out of range or lengths disagree.
func SoftmaxCrossEntropy(logits []float32, labels []int, classes int, scale float32, dlogits []float32) (float64, int, error) {
	n := len(labels)
	if classes < 1 || len(logits) != n*classes || len(dlogits) != n*classes {
		return 0, 0, fmt.Errorf("%w: softmax cross-entropy: %d logits, %d dlogits for %d labels x %d classes",
			ErrShape, len(logits), len(dlogits), n, classes)
	}
	var total float64
	correct := 0
	k := float64(scale) / float64(n)
	for i, y := range labels {
		if y < 0 || y >= classes {
			return 0, 0, fmt.Errorf("%w: label %d of row %d out of range 0..%d", ErrShape, y, i, classes-1)
		}
		loss, ok := rowCrossEntropy(logits[i*classes:(i+1)*classes], y, k, dlogits[i*classes:(i+1)*classes])
		total += loss
		if ok {
			correct++
		}
	}
	return total / float64(n), correct, nil
}

// SoftCrossEntropy returns the mean cross-entropy of logits ([n x classes]) against target
// distributions ([n x classes], each row non-negative and summing to 1: a teacher's
// probabilities, or one-hot rows), the number of rows whose arg-max equals the target's, and
// writes into dlogits the gradient of the mean loss multiplied by scale: (softmax - target) x
// scale / n. With one-hot targets it equals SoftmaxCrossEntropy.
func SoftCrossEntropy(logits, targets []float32, classes int, scale float32, dlogits []float32) (float64, int, error) {
	if classes < 1 || len(logits)%classes != 0 || len(targets) != len(logits) || len(dlogits) != len(logits) {
		return 0, 0, fmt.Errorf("%w: soft cross-entropy: %d logits, %d targets, %d dlogits for %d classes",
			ErrShape, len(logits), len(targets), len(dlogits), classes)
	}
	n := len(logits) / classes
	k := float64(scale) / float64(max(n, 1))
	var total float64
	correct := 0
	for i := range n {
		row, t, g := logits[i*classes:(i+1)*classes], targets[i*classes:(i+1)*classes], dlogits[i*classes:(i+1)*classes]
		var sum float64
		for j, v := range t {
			if !(v >= 0) {
				return 0, 0, fmt.Errorf("%w: target %d of row %d is %g, must be a probability", ErrShape, j, i, v)
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-3 {
			return 0, 0, fmt.Errorf("%w: targets of row %d sum to %g, must sum to 1", ErrShape, i, sum)
		}
		best := argmax32(row)
		mx := float64(row[best])
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(z)
		for j, v := range row {
			total += float64(t[j]) * (lse - float64(v))
			g[j] = float32((math.Exp(float64(v)-lse) - float64(t[j])) * k)
		}
		if best == argmax32(t) {
			correct++
		}
	}
	if n == 0 {
		return 0, 0, nil
	}
	return total / float64(n), correct, nil
}

// argmax32 is the index of v's largest value (the first of equals).
func argmax32(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
