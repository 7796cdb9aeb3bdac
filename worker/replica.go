package worker

import (
	"context"
	"fmt"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	"github.com/whorl-ml/whorl/shard"
)

// netReplica is the real replica: the job's pretraining step
// (recipe.Pretrainer, the one the single-process run drives) on the
// images of an imageSource.
type netReplica struct {
	cfg   job.Config
	net   *model.Net
	opt   recipe.StatefulOptimizer
	src   imageSource
	train *recipe.Pretrainer
}

// imageSource gives the decoded images of a step: a dataset and the indices
// of ids in it.
type imageSource interface {
	Images(ctx context.Context, ids []int) (*shard.Dataset, []int, error)
}

// prefetcher is an imageSource that reads ahead (a *shard.Stream): it is told the image ids
// of the steps after the current one.
type prefetcher interface {
	Prefetch(next [][]int)
}

// Prefetch passes the ids of the steps after the current one to a source
// that reads ahead.
func (r *netReplica) Prefetch(next []StepWork) {
	p, ok := r.src.(prefetcher)
	if !ok {
		return
	}
	ids := make([][]int, len(next))
	for k, w := range next {
		ids[k] = append(w.IDs[:len(w.IDs):len(w.IDs)], w.LabeledIDs...)
	}
	p.Prefetch(ids)
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
	opt := recipe.PretrainOptimizer(cfg)
	return &netReplica{cfg: cfg, net: net, opt: opt, src: src,
		train: recipe.NewPretrainer(cfg, net, opt, shard.Normalizer{Mean: a.Mean, Std: a.Std})}, nil
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

// ComputeGrads trains the replica's part of the step (recipe.Pretrainer:
// the samples do not depend on how the global batch is split over
// workers) with BatchNorm synchronised through c and the gradients
// observed by sink. The statistic is this rank's part's.
func (r *netReplica) ComputeGrads(ctx context.Context, c Collective, sink GradSink, w StepWork, epoch int, scale float32) (job.StepStat, error) {
	d, idx, err := r.src.Images(ctx, append(w.IDs[:len(w.IDs):len(w.IDs)], w.LabeledIDs...))
	if err != nil {
		return job.StepStat{}, fmt.Errorf("images of step %d: %w", w.Step, err)
	}
	if c != nil {
		r.net.SetReducer(c)
	} else {
		r.net.SetReducer(nil)
	}
	r.net.SetGradObserver(sink)
	defer r.net.SetGradObserver(nil)
	n := len(w.IDs)
	return r.train.Grads(ctx, recipe.StepBatch{Epoch: epoch, Step: w.Step, Set: d, Idx: idx[:n], IDs: w.IDs,
		LabeledIdx: idx[n:], LabeledIDs: w.LabeledIDs, Classes: w.LabeledClasses, Share: scale, LabeledShare: labeledShare(w)})
}

// GradReduce is the job's gradient buckets and their encoding.
func (r *netReplica) GradReduce() GradReduce {
	return GradReduce{BucketElems: r.cfg.Pretrain.GradBucketElems(), BF16: r.cfg.Pretrain.GradBF16}
}

// Apply takes the optimiser step with the job's learning-rate schedule.
func (r *netReplica) Apply(epoch, step, steps int) error {
	r.train.Apply(epoch, step, steps)
	return nil
}

// Checkpoint encodes the network and optimizer with the position in the
// job's metadata keys (model/recipe), so experiment.FineTune and `whorl
// run`'s resume read it.
func (r *netReplica) Checkpoint(pos job.Position) ([]byte, error) {
	return recipe.EncodePretrain(r.cfg, r.net, r.opt, recipe.Progress{Position: job.Position{Epoch: pos.Epoch, Step: pos.Step}})
}

// Restore loads a checkpoint of the same job into the replica.
func (r *netReplica) Restore(data []byte) (job.Position, error) {
	p, err := recipe.RestorePretrain(r.cfg, data, r.net, r.opt)
	if err != nil {
		return job.Position{}, err
	}
	return job.Position{Epoch: p.Epoch, Step: p.Step}, nil
}
