package experiment

import (
	"math"
	"testing"
)

// TestNewPrediction checks the arg-max, the softmax (known answer, stable
// for large logits) and the class names.
func TestNewPrediction(t *testing.T) {
	p := newPrediction("a.jpg", []float32{1000, 1000 + float32(math.Log(3)), 0}, []string{"daisy", "rose", "tulip"})
	if p.Class != 1 || p.Label != "rose" || math.Abs(p.Probability-0.75) > 1e-4 || math.Abs(p.Probabilities[0]-0.25) > 1e-4 {
		t.Errorf("prediction %+v, want rose at 0.75 and daisy at 0.25", p)
	}
	if got := classNames(map[string]string{}, 2); got[1] != "class 1" {
		t.Errorf("numbered names %v", got)
	}
}
