package model

import "fmt"

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
