package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// TestMultiTaskMatchesPerTaskSoftmax checks each task's loss, count and
// gradient against SoftmaxCrossEntropy on its own rows and columns, with
// zero gradient in the other columns.
func TestMultiTaskMatchesPerTaskSoftmax(t *testing.T) {
	const width, rot, cls = 9, 8, 3
	rng := rand.New(rand.NewPCG(3, 4))
	logits := randSlice(rng, (rot+cls)*width)
	rotLabels, clsLabels := []int{0, 1, 2, 3, 3, 2, 1, 0}, []int{4, 0, 2}
	tasks := []Task{{Row: 0, Col: 0, Classes: 4, Labels: rotLabels, Scale: 0.5}, {Row: rot, Col: 4, Classes: 5, Labels: clsLabels, Scale: 2}}
	dl := make([]float32, len(logits))
	res, err := MultiTaskCrossEntropy(logits, width, tasks, dl)
	if err != nil {
		t.Fatal(err)
	}
	for ti, task := range tasks {
		sub, gsub := make([]float32, 0, len(task.Labels)*task.Classes), make([]float32, len(task.Labels)*task.Classes)
		for i := range task.Labels {
			r := (task.Row + i) * width
			sub = append(sub, logits[r+task.Col:r+task.Col+task.Classes]...)
		}
		loss, correct, err := SoftmaxCrossEntropy(sub, task.Labels, task.Classes, task.Scale, gsub)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(loss-res[ti].Loss) > 1e-12 || correct != res[ti].Correct {
			t.Errorf("task %d: loss %v correct %d, want %v %d", ti, res[ti].Loss, res[ti].Correct, loss, correct)
		}
		for i := range task.Labels {
			r := (task.Row + i) * width
			for j := range width {
				want := float32(0)
				if j >= task.Col && j < task.Col+task.Classes {
					want = gsub[i*task.Classes+j-task.Col]
				}
				if dl[r+j] != want {
					t.Fatalf("task %d row %d col %d: gradient %v, want %v", ti, i, j, dl[r+j], want)
				}
			}
		}
	}
	bad := []Task{{Row: rot, Col: 4, Classes: 6, Labels: clsLabels, Scale: 1}}
	if _, err := MultiTaskCrossEntropy(logits, width, bad, dl); !errors.Is(err, ErrShape) {
		t.Fatalf("columns past the width: %v", err)
	}
	bad = []Task{{Row: rot, Col: 4, Classes: 5, Labels: []int{5, 0, 0}, Scale: 1}}
	if _, err := MultiTaskCrossEntropy(logits, width, bad, dl); !errors.Is(err, ErrShape) {
		t.Fatalf("label out of range: %v", err)
	}
}

// TestTrainStepTasksGradient checks the joint step's parameter gradient by
// finite differences of the weighted sum of the two task losses (BatchNorm
// in training mode over all rows).
func TestTrainStepTasksGradient(t *testing.T) {
	n, err := New(Config{Arch: ArchSmall, Blocks: 2, Width: 4, InputSize: 8, Classes: 9}, 1)
	if err != nil {
		t.Fatal(err)
	}
	n.SetTraining(true)
	rng := rand.New(rand.NewPCG(5, 6))
	const rows = 6
	x := randSlice(rng, rows*3*8*8)
	tasks := []Task{{Row: 0, Col: 0, Classes: 4, Labels: []int{0, 1, 2, 3}, Scale: 1}, {Row: 4, Col: 4, Classes: 5, Labels: []int{4, 1}, Scale: 0.5}}
	ctx := context.Background()
	n.ZeroGrads()
	if _, err := n.TrainStepTasks(ctx, x, rows, tasks); err != nil {
		t.Fatal(err)
	}
	grad := append([]float32(nil), n.Grads()...)
	state := append([]float32(nil), n.State()...)
	fdCheckKinks(t, "joint loss", n.Params(), grad, 40, func() float64 {
		copy(n.State(), state)
		res, err := n.TrainStepTasks(ctx, x, rows, tasks)
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Loss + 0.5*res[1].Loss
	})
}

// TestKeepHeadRows checks the narrowed network's logits are the kept
// columns of the original's (up to the GEMM's summation order).
func TestKeepHeadRows(t *testing.T) {
	n, _ := New(Config{Arch: ArchSmall, Blocks: 2, Width: 8, InputSize: 8, Classes: 9}, 2)
	x := randSlice(rand.New(rand.NewPCG(7, 8)), 2*3*8*8)
	ctx := context.Background()
	full, err := n.Forward(ctx, x, 2)
	if err != nil {
		t.Fatal(err)
	}
	full = append([]float32(nil), full...)
	n.KeepHeadRows(4, 9)
	got, err := n.Forward(ctx, x, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n.Config().Classes != 5 {
		t.Fatalf("classes %d after keeping 5 rows", n.Config().Classes)
	}
	for i := range 2 {
		for j := range 5 {
			if w := full[i*9+4+j]; math.Abs(float64(got[i*5+j]-w)) > 1e-5*(1+math.Abs(float64(w))) {
				t.Fatalf("image %d class %d: %v, want %v", i, j, got[i*5+j], full[i*9+4+j])
			}
		}
	}
}
