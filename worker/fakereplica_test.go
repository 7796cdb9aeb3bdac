package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/whorl-ml/whorl/job"
)

// quadReplica is a small model with the same data-parallel structure as the
// real network: a "batch statistic" (the mean input, like BatchNorm's)
// synchronised through the collective during the forward pass and folded
// into a running mean (state), a loss 0.5*|w - (x - mean)|^2 whose gradient
// depends on the global statistic, and SGD with momentum (optimizer state).
type quadReplica struct {
	w, g, s, m []float32
	delay      time.Duration // per-step compute time (to widen kill windows)
	steps      *atomic.Int64 // optimizer steps applied, shared by a test
}

const quadDim = 6

type quadFactory struct {
	delay time.Duration
	steps atomic.Int64
}

func (f *quadFactory) NewReplica(_ context.Context, a Assignment) (Replica, error) {
	r := &quadReplica{w: make([]float32, quadDim), g: make([]float32, quadDim), s: make([]float32, quadDim),
		m: make([]float32, quadDim), delay: f.delay, steps: &f.steps}
	for i := range r.w {
		r.w[i] = float32(i) / quadDim // the "seeded" initial weights
	}
	return r, nil
}

func (r *quadReplica) Params() []float32   { return r.w }
func (r *quadReplica) Grads() []float32    { return r.g }
func (r *quadReplica) State() []float32    { return r.s }
func (r *quadReplica) OptState() []float32 { return append([]float32(nil), r.m...) }

func (r *quadReplica) SetOptState(s []float32) error {
	if len(s) != len(r.m) {
		return fmt.Errorf("optimizer state of %d values, want %d", len(s), len(r.m))
	}
	copy(r.m, s)
	return nil
}

// input is image id's augmented input at (epoch, step).
func input(id, epoch, step int, out []float32) {
	for i := range out {
		out[i] = float32(math.Sin(float64(id*(i+1)))) + 0.01*float32((epoch*31+step*7+id+i)%5)
	}
}

// GradReduce cuts the 6 gradients into buckets [2, 6) and [0, 2), so
// the loop's tests run the bucketed all-reduce.
func (r *quadReplica) GradReduce() GradReduce { return GradReduce{BucketElems: 4} }

func (r *quadReplica) ComputeGrads(ctx context.Context, c Collective, sink GradSink, w StepWork, epoch int, scale float32) (job.StepStat, error) {
	if r.delay > 0 {
		sleep(ctx, r.delay)
	}
	xs := make([][]float32, len(w.IDs))
	stat := make([]float32, quadDim+1)
	for k, id := range w.IDs {
		xs[k] = make([]float32, quadDim)
		input(id, epoch, w.Step, xs[k])
		for i, v := range xs[k] {
			stat[i] += v
		}
	}
	stat[quadDim] = float32(len(w.IDs))
	if c != nil {
		if err := c.AllReduceSum(ctx, stat); err != nil {
			return job.StepStat{}, fmt.Errorf("sync statistic: %w", err)
		}
	}
	for i := range quadDim {
		mean := stat[i] / stat[quadDim]
		r.s[i] = 0.9*r.s[i] + 0.1*mean
		stat[i] = mean
	}
	clear(r.g)
	var loss float64
	for _, x := range xs {
		for i := range quadDim {
			d := r.w[i] - (x[i] - stat[i])
			r.g[i] += d
			loss += 0.5 * float64(d*d)
		}
	}
	for i := range r.g {
		r.g[i] *= scale / float32(len(xs))
	}
	if sink != nil { // as backward would: from the end, in three ranges
		sink.GradsReady(3, quadDim)
		sink.GradsReady(1, 3)
		sink.GradsReady(0, 1)
	}
	return job.StepStat{Loss: loss / float64(len(xs))}, ctx.Err()
}

func (r *quadReplica) Apply(epoch, step, steps int) error {
	lr := float32(0.1) / float32(1+epoch)
	for i := range r.w {
		r.m[i] = 0.9*r.m[i] + r.g[i]
		r.w[i] -= lr * r.m[i]
	}
	r.steps.Add(1)
	return nil
}

type quadCheckpoint struct {
	W, S, M []float32
	Pos     job.Position
}

func (r *quadReplica) Checkpoint(pos job.Position) ([]byte, error) {
	return json.Marshal(quadCheckpoint{W: r.w, S: r.s, M: r.m, Pos: pos})
}

func (r *quadReplica) Restore(data []byte) (job.Position, error) {
	var c quadCheckpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return job.Position{}, err
	}
	copy(r.w, c.W)
	copy(r.s, c.S)
	copy(r.m, c.M)
	return c.Pos, nil
}
