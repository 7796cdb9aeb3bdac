package worker

import (
	"context"
	"fmt"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	"github.com/whorl-ml/whorl/shard"
)

// netReplica is the real replica: the job's network on the rotation task
// with the job's SGD (both from model/recipe), fed by an imageSource
// through the job's Batcher.
type netReplica struct {
	cfg     job.Config
	net     *model.Net
	opt     recipe.StatefulOptimizer
	src     imageSource
	batcher *job.Batcher
}

// imageSource gives the decoded images of a step: a dataset and the indices
// of ids in it.
type imageSource interface {
	images(ctx context.Context, ids []int) (*shard.Dataset, []int, error)
}

// newNetReplica builds the job's network from the config seed.
func newNetReplica(cfg job.Config, a Assignment, src imageSource) (*netReplica, error) {
	if cfg.IsJoint() && a.Classes < 2 {
		return nil, fmt.Errorf("joint mode: the assignment names %d classes (a coordinator older than the joint mode?)", a.Classes)
	}
	net, err := recipe.PretrainNet(cfg, a.Classes)
	if err != nil {
		return nil, err
	}
	return &netReplica{cfg: cfg, net: net, opt: recipe.PretrainOptimizer(cfg), src: src,
		batcher: job.NewBatcher(cfg, shard.Normalizer{Mean: a.Mean, Std: a.Std})}, nil
}

func (r *netReplica) Params() []float32 { return r.net.Params() }
func (r *netReplica) Grads() []float32  { return r.net.Grads() }
func (r *netReplica) State() []float32  { return r.net.State() }

// OptState is [steps, momentum...] padded with zeros before the first step
// (SGD ignores the buffer while steps is 0).
func (r *netReplica) OptState() []float32 {
	s := r.opt.State()
	if want := r.net.NumParams() + 1; len(s) < want {
		s = append(s, make([]float32, want-len(s))...)
	}
	return s
}

func (r *netReplica) SetOptState(s []float32) error {
	if len(s) > 0 && s[0] == 0 {
		s = s[:1] // no step taken: no momentum buffer
	}
	return r.opt.SetState(s, r.net.NumParams())
}

// ComputeGrads builds the rotation batch of the step's images (the job's
// Batcher: the samples do not depend on how the global batch is split over
// workers) at the epoch's side (the resolution curriculum's), and runs
// forward and backward with BatchNorm synchronised through c. The stats are
// this rank's part's.
func (r *netReplica) ComputeGrads(ctx context.Context, c Collective, sink GradSink, w StepWork, epoch int, scale float32) (StepStats, error) {
	d, idx, err := r.src.images(ctx, append(w.IDs[:len(w.IDs):len(w.IDs)], w.LabeledIDs...))
	if err != nil {
		return StepStats{}, fmt.Errorf("images of step %d: %w", w.Step, err)
	}
	if err := r.net.SetInputSize(r.batcher.SizeAt(epoch)); err != nil {
		return StepStats{}, fmt.Errorf("step %d of epoch %d: %w", w.Step, epoch+1, err)
	}
	r.prepare(c, sink)
	defer r.net.SetGradObserver(nil)
	n := len(w.IDs)
	if r.cfg.IsJoint() {
		x, labels := r.batcher.BuildJoint(d, idx[:n], w.IDs, idx[n:], w.LabeledIDs, epoch, w.Step)
		js, err := recipe.JointStep(ctx, r.cfg, r.net, x, labels, w.LabeledClasses, scale, labeledShare(w))
		if err != nil {
			return StepStats{}, fmt.Errorf("train step: %w", err)
		}
		return StepStats{Loss: js.Loss, Accuracy: js.Accuracy, ClassLoss: js.ClassLoss, ClassAccuracy: js.ClassAccuracy}, nil
	}
	x, labels := r.batcher.Build(d, idx[:n], w.IDs, epoch, w.Step)
	loss, correct, err := r.net.TrainStep(ctx, x, labels, scale)
	if err != nil {
		return StepStats{}, fmt.Errorf("train step: %w", err)
	}
	return StepStats{Loss: loss, Accuracy: float64(correct) / float64(max(1, len(labels)))}, nil
}

// prepare readies the network for a training step: BatchNorm synchronised
// through c (nil: local), gradients observed by sink, zero gradients.
func (r *netReplica) prepare(c Collective, sink GradSink) {
	if c != nil {
		r.net.SetReducer(c)
	} else {
		r.net.SetReducer(nil)
	}
	r.net.SetGradObserver(sink)
	r.net.SetTraining(true)
	r.net.ZeroGrads()
}

// GradReduce is the job's gradient buckets and their encoding.
func (r *netReplica) GradReduce() GradReduce {
	return GradReduce{BucketElems: r.cfg.Pretrain.GradBucketElems(), BF16: r.cfg.Pretrain.GradBF16}
}

// Apply takes the SGD step with the job's learning-rate schedule.
func (r *netReplica) Apply(epoch, step, steps int) error {
	p := r.cfg.Pretrain
	r.opt.Step(r.net.Params(), r.net.Grads(), p.Schedule.Rate(p.LR, epoch, step, steps, p.Epochs))
	return nil
}

// Checkpoint encodes the network and optimizer with the position in the
// job's metadata keys (model/recipe), so experiment.FineTune and `whorl
// run`'s resume read it.
func (r *netReplica) Checkpoint(pos Position) ([]byte, error) {
	return recipe.EncodePretrain(r.cfg, r.net, r.opt, recipe.Progress{Position: recipe.Position{Epoch: pos.Epoch, Step: pos.Step}})
}

// Restore loads a checkpoint of the same job into the replica.
func (r *netReplica) Restore(data []byte) (Position, error) {
	p, err := recipe.RestorePretrain(r.cfg, data, r.net, r.opt)
	if err != nil {
		return Position{}, err
	}
	return Position{Epoch: p.Epoch, Step: p.Step}, nil
}
