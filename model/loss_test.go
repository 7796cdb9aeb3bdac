package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestSoftCrossEntropyOneHotIsSoftmaxCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	logits := randSlice(rng, 4*5)
	labels := []int{4, 0, 2, 2}
	targets := make([]float32, 20)
	for i, y := range labels {
		targets[i*5+y] = 1
	}
	g1, g2 := make([]float32, 20), make([]float32, 20)
	l1, c1, err := SoftmaxCrossEntropy(logits, labels, 5, 0.5, g1)
	if err != nil {
		t.Fatal(err)
	}
	l2, c2, err := SoftCrossEntropy(logits, targets, 5, 0.5, g2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(l1-l2) > 1e-9 || c1 != c2 {
		t.Errorf("soft loss %v (%d right), hard %v (%d right)", l2, c2, l1, c1)
	}
	for i := range g1 {
		if math.Abs(float64(g1[i]-g2[i])) > 1e-7 {
			t.Fatalf("gradient %d: soft %v, hard %v", i, g2[i], g1[i])
		}
	}
}

func TestSoftCrossEntropyKnownAnswerAndGradient(t *testing.T) {
	// One row, logits 0 and ln 3: softmax (1/4, 3/4); target (1/2, 1/2):
	// loss = -(1/2 ln 1/4 + 1/2 ln 3/4), gradient (1/4-1/2, 3/4-1/2).
	logits, targets, g := []float32{0, float32(math.Log(3))}, []float32{0.5, 0.5}, make([]float32, 2)
	loss, right, err := SoftCrossEntropy(logits, targets, 2, 1, g)
	if err != nil {
		t.Fatal(err)
	}
	if want := -(0.5*math.Log(0.25) + 0.5*math.Log(0.75)); math.Abs(loss-want) > 1e-6 {
		t.Errorf("loss %v, want %v", loss, want)
	}
	if math.Abs(float64(g[0])+0.25) > 1e-6 || math.Abs(float64(g[1])-0.25) > 1e-6 {
		t.Errorf("gradient %v, want [-0.25 0.25]", g)
	}
	if right != 0 { // arg-max 1 against the target's first of equals, 0
		t.Errorf("%d rows agree, want 0", right)
	}
	// Finite differences on random rows and random distributions.
	rng := rand.New(rand.NewPCG(5, 6))
	x := randSlice(rng, 3*4)
	tg := make([]float32, 12)
	for i := range 3 {
		var s float32
		for j := range 4 {
			tg[i*4+j] = rng.Float32()
			s += tg[i*4+j]
		}
		for j := range 4 {
			tg[i*4+j] /= s
		}
	}
	dx := make([]float32, 12)
	f := func() float64 {
		l, _, err := SoftCrossEntropy(x, tg, 4, 1, make([]float32, 12))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if _, _, err := SoftCrossEntropy(x, tg, 4, 1, dx); err != nil {
		t.Fatal(err)
	}
	fdCheck(t, "soft cross-entropy dlogits", x, dx, 12, f)
}

func TestSoftCrossEntropyRefusesWhatIsNotADistribution(t *testing.T) {
	g := make([]float32, 4)
	for name, tg := range map[string][]float32{
		"negative":      {1.5, -0.5, 0.5, 0.5},
		"sum 0.5":       {0.25, 0.25, 0.5, 0.5},
		"NaN":           {float32(math.NaN()), 1, 0.5, 0.5},
		"wrong lengths": {1, 0},
	} {
		if _, _, err := SoftCrossEntropy([]float32{1, 2, 3, 4}, tg, 2, 1, g); !errors.Is(err, ErrShape) {
			t.Errorf("%s: err = %v, want ErrShape", name, err)
		}
	}
}
