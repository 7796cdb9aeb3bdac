package recipe

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/shard"
)

// stepData is n random 16-pixel images of 5 classes.
func stepData(t *testing.T, n int) *shard.Dataset {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	pix := make([]uint8, n*16*16*3)
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	items := make([]shard.Item, n)
	for i := range items {
		items[i] = shard.Item{Path: "x", Class: i % 5}
	}
	d, err := shard.NewDataset([]string{"a", "b", "c", "d", "e"}, items, 16, pix)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newStepper(t *testing.T, c job.Config) *Pretrainer {
	t.Helper()
	n, err := PretrainNet(c, 5)
	if err != nil {
		t.Fatal(err)
	}
	return NewPretrainer(c, n, PretrainOptimizer(c), shard.Normalizer{Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}})
}

// pairReducer sums the buffers of two ranks' calls (one per goroutine) and
// gives both the sum: BatchNorm synchronised over a two-member ring.
type pairReducer struct {
	mu      sync.Mutex
	waiting []float32
	done    chan []float32
}

func newPairReducer() *pairReducer { return &pairReducer{done: make(chan []float32)} }

func (r *pairReducer) AllReduceSum(ctx context.Context, buf []float32) error {
	r.mu.Lock()
	if r.waiting == nil {
		r.waiting = buf
		r.mu.Unlock()
		select {
		case sum := <-r.done:
			copy(buf, sum)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	other := r.waiting
	r.waiting = nil
	r.mu.Unlock()
	for i := range buf {
		buf[i] += other[i]
	}
	r.done <- append([]float32(nil), buf...)
	return nil
}

// TestPretrainerPartsEqualTheWhole proves the one step's contract: the
// global step trained as two parts (each with its share, BatchNorm
// synchronised between them, gradients summed, statistics combined by
// Weighted and Unweighted) is the step trained whole in one process, in both
// modes; the gradients are the step's own (Grads zeroes them first).
func TestPretrainerPartsEqualTheWhole(t *testing.T) {
	for _, mode := range []string{job.ModePretrainFinetune, job.ModeJoint} {
		t.Run(mode, func(t *testing.T) {
			c := tinyConfig()
			if mode == job.ModeJoint {
				c.Mode, c.Joint = mode, job.DefaultJoint(c)
			}
			d := stepData(t, 12)
			ids := []int{0, 1, 2, 3, 4, 5, 6, 7}
			lab := []int{8, 9, 10, 11}
			batch := func(ids, lab []int, share, labShare float32) StepBatch {
				b := StepBatch{Epoch: 1, Step: 2, Set: d, Idx: ids, IDs: ids, Share: share, LabeledShare: labShare}
				if mode == job.ModeJoint {
					b.LabeledIdx, b.LabeledIDs = lab, lab
					for _, id := range lab {
						b.Classes = append(b.Classes, d.Items[id].Class)
					}
				}
				return b
			}
			whole := newStepper(t, c)
			ctx := context.Background()
			if _, err := whole.Grads(ctx, batch(ids, lab, 1, 1)); err != nil { // gradients left behind
				t.Fatal(err)
			}
			want, err := whole.Grads(ctx, batch(ids, lab, 1, 1))
			if err != nil {
				t.Fatal(err)
			}
			parts := [2]*Pretrainer{newStepper(t, c), newStepper(t, c)}
			red := newPairReducer()
			var stats [2]job.StepStat
			var errs [2]error
			var wg sync.WaitGroup
			for r := range parts {
				parts[r].Net().SetReducer(red)
				wg.Add(1)
				go func() {
					defer wg.Done()
					stats[r], errs[r] = parts[r].Grads(ctx, batch(ids[4*r:4*r+4], lab[2*r:2*r+2], 0.5, 0.5))
				}()
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatal(errs)
			}
			var sum [4]float32
			for r := range parts {
				w := Weighted(stats[r], 0.5, 0.5)
				for i := range sum {
					sum[i] += w[i]
				}
			}
			got := Unweighted(sum, len(ids))
			for _, f := range []struct {
				name      string
				got, want float64
			}{{"loss", got.Loss, want.Loss}, {"accuracy", got.Accuracy, want.Accuracy},
				{"class loss", got.ClassLoss, want.ClassLoss}, {"class accuracy", got.ClassAccuracy, want.ClassAccuracy}} {
				if math.Abs(f.got-f.want) > 1e-5 {
					t.Errorf("%s: parts %v, whole %v", f.name, f.got, f.want)
				}
			}
			if got.Images != want.Images || want.Images != len(ids) {
				t.Errorf("images: parts %d, whole %d, want %d", got.Images, want.Images, len(ids))
			}
			if mode == job.ModeJoint && want.ClassLoss == 0 {
				t.Error("the joint step measured no class loss")
			}
			g0, g1, gw := parts[0].Net().Grads(), parts[1].Net().Grads(), whole.Net().Grads()
			worst := 0.0
			for i := range gw {
				worst = max(worst, math.Abs(float64(g0[i]+g1[i]-gw[i])))
			}
			if worst > 1e-4 {
				t.Errorf("summed parts' gradients differ from the whole step's by up to %g", worst)
			}
		})
	}
}

// TestPretrainerApplyFollowsTheSchedule checks Apply steps the weights
// against the gradients at the schedule's rate for the step.
func TestPretrainerApplyFollowsTheSchedule(t *testing.T) {
	c := tinyConfig()
	c.Pretrain.Momentum, c.Pretrain.WeightDecay, c.Pretrain.Nesterov = 0, 0, false
	p := newStepper(t, c)
	before := append([]float32(nil), p.Net().Params()...)
	for i := range p.Net().Grads() {
		p.Net().Grads()[i] = 1
	}
	p.Apply(1, 3, 10)
	rate := c.Pretrain.Schedule.Rate(c.Pretrain.LR, 1, 3, 10, c.Pretrain.Epochs)
	for i, v := range p.Net().Params() {
		if d := float64(before[i]-v) - rate; math.Abs(d) > 1e-6 {
			t.Fatalf("param %d moved by %v, want the rate %v", i, before[i]-v, rate)
		}
	}
}
