package model

import (
	"context"
	"fmt"
	"math"
)

// Task is one head's share of a multi-task batch (S4L's joint training: the
// rotation head and the class head are column ranges of one classifier).
// The rows [Row, Row+len(Labels)) of the logits are classified by the
// columns [Col, Col+Classes) only; the other columns of those rows get no
// gradient. Scale multiplies the gradient of the task's mean loss (a data-
// parallel rank passes its share of the global rows times the task weight).
type Task struct {
	Row, Col, Classes int
	Labels            []int
	Scale             float32
}

// TaskResult is a task's mean cross-entropy over its rows and the number of
// rows whose arg-max over the task's columns equals the label.
type TaskResult struct {
	Loss    float64
	Correct int
}

// MultiTaskCrossEntropy is SoftmaxCrossEntropy per task on logits of width
// columns: it writes every task's gradient into dlogits (zero elsewhere)
// and returns each task's result. Tasks must not share rows.
func MultiTaskCrossEntropy(logits []float32, width int, tasks []Task, dlogits []float32) ([]TaskResult, error) {
	if width < 1 || len(logits)%width != 0 || len(dlogits) != len(logits) {
		return nil, fmt.Errorf("%w: multi-task cross-entropy: %d logits, %d dlogits, width %d", ErrShape, len(logits), len(dlogits), width)
	}
	rows := len(logits) / width
	clear(dlogits)
	out := make([]TaskResult, len(tasks))
	for ti, t := range tasks {
		if t.Row < 0 || t.Row+len(t.Labels) > rows || t.Col < 0 || t.Classes < 1 || t.Col+t.Classes > width {
			return nil, fmt.Errorf("%w: task %d: rows %d+%d, columns %d+%d of %d x %d logits",
				ErrShape, ti, t.Row, len(t.Labels), t.Col, t.Classes, rows, width)
		}
		k := float64(t.Scale) / float64(max(1, len(t.Labels)))
		var total float64
		for i, y := range t.Labels {
			if y < 0 || y >= t.Classes {
				return nil, fmt.Errorf("%w: task %d: label %d of row %d out of range 0..%d", ErrShape, ti, y, i, t.Classes-1)
			}
			r := (t.Row + i) * width
			loss, ok := rowCrossEntropy(logits[r+t.Col:r+t.Col+t.Classes], y, k, dlogits[r+t.Col:r+t.Col+t.Classes])
			total += loss
			if ok {
				out[ti].Correct++
			}
		}
		out[ti].Loss = total / float64(max(1, len(t.Labels)))
	}
	return out, nil
}

// rowCrossEntropy is one row's cross-entropy against label y; it writes
// k times the gradient into g and reports whether the arg-max is y.
func rowCrossEntropy(row []float32, y int, k float64, g []float32) (float64, bool) {
	best, mx := 0, float64(row[0])
	for j, v := range row {
		if float64(v) > mx {
			best, mx = j, float64(v)
		}
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(sum)
	for j, v := range row {
		p := math.Exp(float64(v) - lse)
		if j == y {
			p--
		}
		g[j] = float32(p * k)
	}
	return lse - float64(row[y]), best == y
}

// TrainStepTasks is TrainStep for a multi-task batch: one forward of the
// rows of x (so BatchNorm's statistics cover every task's rows), each task's
// loss on its columns, one backward. Gradients accumulate into Grads().
func (n *Net) TrainStepTasks(ctx context.Context, x []float32, rows int, tasks []Task) ([]TaskResult, error) {
	logits, err := n.Forward(ctx, x, rows)
	if err != nil {
		return nil, fmt.Errorf("multi-task train step: %w", err)
	}
	dl := n.ws.dlogits[:len(logits)]
	res, err := MultiTaskCrossEntropy(logits, n.cfg.Classes, tasks, dl)
	if err != nil {
		return nil, fmt.Errorf("multi-task train step: %w", err)
	}
	if err := n.Backward(ctx, dl); err != nil {
		return nil, fmt.Errorf("multi-task train step: %w", err)
	}
	return res, nil
}

// KeepHeadRows narrows the classifier to its outputs [lo, hi) (the class
// head of a jointly trained network), keeping every other parameter and
// the state. Gradients are reset to zero. It panics on a range outside the
// head, as a programming error.
func (n *Net) KeepHeadRows(lo, hi int) {
	if lo < 0 || hi > n.cfg.Classes || lo >= hi {
		panic(fmt.Sprintf("model: keep head rows [%d, %d) of %d", lo, hi, n.cfg.Classes))
	}
	w := append([]float32(nil), n.head.w[lo*n.head.cin:hi*n.head.cin]...)
	b := append([]float32(nil), n.head.b[lo:hi]...)
	n.ReplaceHead(hi-lo, 0)
	copy(n.head.w, w)
	copy(n.head.b, b)
}
