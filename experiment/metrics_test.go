package experiment

import (
	"math"
	"testing"
)

func TestConfusionKnownAnswers(t *testing.T) {
	labels := []int{0, 0, 0, 1, 1, 2, 2, 2, 2}
	preds := []int{0, 1, 0, 1, 1, 0, 2, 2, 1}
	c, err := ConfusionOf(3, labels, preds)
	if err != nil {
		t.Fatal(err)
	}
	want := Confusion{{2, 1, 0}, {0, 2, 0}, {1, 1, 2}}
	for i := range want {
		for j := range want[i] {
			if c[i][j] != want[i][j] {
				t.Fatalf("confusion = %v, want %v", c, want)
			}
		}
	}
	if got := c.Accuracy(); math.Abs(got-6.0/9) > 1e-12 {
		t.Errorf("accuracy = %v, want 6/9", got)
	}
	wantPC := []float64{2.0 / 3, 1, 0.5}
	for i, got := range c.PerClass() {
		if math.Abs(got-wantPC[i]) > 1e-12 {
			t.Errorf("per-class[%d] = %v, want %v", i, got, wantPC[i])
		}
	}
	if c.Total() != 9 {
		t.Errorf("total = %d, want 9", c.Total())
	}
}

func TestConfusionErrorsAndEmpty(t *testing.T) {
	tests := []struct {
		name          string
		labels, preds []int
	}{
		{"length mismatch", []int{0, 1}, []int{0}},
		{"label out of range", []int{3}, []int{0}},
		{"negative prediction", []int{0}, []int{-1}},
	}
	for _, tc := range tests {
		if _, err := ConfusionOf(3, tc.labels, tc.preds); err == nil {
			t.Errorf("%s: want an error", tc.name)
		}
	}
	empty := NewConfusion(2)
	if empty.Accuracy() != 0 || empty.PerClass()[1] != 0 {
		t.Errorf("empty matrix: accuracy %v per-class %v, want zeros", empty.Accuracy(), empty.PerClass())
	}
}

func TestMeanStd(t *testing.T) {
	tests := []struct {
		xs        []float64
		mean, std float64
	}{
		{nil, 0, 0},
		{[]float64{3}, 3, 0},
		{[]float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, math.Sqrt(32.0 / 7)},
	}
	for _, tc := range tests {
		m, s := MeanStd(tc.xs)
		if math.Abs(m-tc.mean) > 1e-12 || math.Abs(s-tc.std) > 1e-12 {
			t.Errorf("MeanStd(%v) = %v, %v; want %v, %v", tc.xs, m, s, tc.mean, tc.std)
		}
	}
}
