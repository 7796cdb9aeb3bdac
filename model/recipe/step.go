package recipe

import (
	"context"
	"fmt"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

// Pretrainer is a job's pretraining step, written once: the batch (the
// job's Batcher at the epoch's side), forward and backward of the rotation
// or joint task, the step's statistic and the optimiser step with the
// job's schedule. A worker's replica drives it on its part of every global
// step, with BatchNorm and the gradients reduced over the ring; the
// single-process run (experiment.Pretrain) drives it on the whole step.
type Pretrainer struct {
	c       job.Config
	net     *model.Net
	opt     model.Optimizer
	batcher *job.Batcher
}

// NewPretrainer drives net and opt (c's pretraining network and optimiser:
// PretrainNet, PretrainOptimizer) with batches of images normalised by
// norm.
func NewPretrainer(c job.Config, net *model.Net, opt model.Optimizer, norm shard.Normalizer) *Pretrainer {
	return &Pretrainer{c: c, net: net, opt: opt, batcher: job.NewBatcher(c, norm)}
}

// Net is the network the steps train.
func (p *Pretrainer) Net() *model.Net { return p.net }

// StepBatch is one part of a global step: all of it in one process, a
// rank's share of it in a cluster.
type StepBatch struct {
	// Epoch (0-based) and Step place the step in the job's plan: they seed
	// the augmentation and choose the curriculum's side and the rate.
	Epoch, Step int
	// Set holds the images; Idx are the part's rotation images in it and
	// IDs their ids in the job's dataset (each image's augmentation is
	// seeded by its id, so the samples do not depend on the split over
	// ranks).
	Set      *shard.Dataset
	Idx, IDs []int
	// LabeledIdx, LabeledIDs and Classes are the joint mode's labeled
	// images of the part: in Set, in the dataset, and their classes.
	LabeledIdx, LabeledIDs, Classes []int
	// Share and LabeledShare are the part's shares of the global step's
	// rotation and labeled images (1 and 1 in one process): the gradient is
	// of the global batch's mean loss once the parts are summed.
	Share, LabeledShare float32
}

// Grads sets the network to train at the epoch's side, zeroes its
// gradients and accumulates those of b's part of the step's loss (the
// network's reducer and gradient observer, if set, take part). The
// statistic is the part's own: its images, and its mean loss and accuracy
// (Weighted and Unweighted combine the parts of a cluster's step).
func (p *Pretrainer) Grads(ctx context.Context, b StepBatch) (job.StepStat, error) {
	if err := p.net.SetInputSize(p.batcher.SizeAt(b.Epoch)); err != nil {
		return job.StepStat{}, fmt.Errorf("step %d of epoch %d: %w", b.Step+1, b.Epoch+1, err)
	}
	p.net.SetTraining(true)
	p.net.ZeroGrads()
	if !p.c.IsJoint() {
		x, labels := p.batcher.Build(b.Set, b.Idx, b.IDs, b.Epoch, b.Step)
		loss, correct, err := p.net.TrainStep(ctx, x, labels, b.Share)
		if err != nil {
			return job.StepStat{}, fmt.Errorf("train step %d of epoch %d: %w", b.Step+1, b.Epoch+1, err)
		}
		return job.StepStat{Images: len(b.IDs), Loss: loss, Accuracy: ratio(correct, len(labels))}, nil
	}
	x, labels := p.batcher.BuildJoint(b.Set, b.Idx, b.IDs, b.LabeledIdx, b.LabeledIDs, b.Epoch, b.Step)
	js, err := JointStep(ctx, p.c, p.net, x, labels, b.Classes, b.Share, b.LabeledShare)
	if err != nil {
		return job.StepStat{}, fmt.Errorf("train step %d of epoch %d: %w", b.Step+1, b.Epoch+1, err)
	}
	return job.StepStat{Images: len(b.IDs), Loss: js.Loss, Accuracy: js.Accuracy, ClassLoss: js.ClassLoss, ClassAccuracy: js.ClassAccuracy}, nil
}

// Apply takes the optimiser step on the network's (summed) gradients at the
// schedule's rate for step of epoch, of steps global steps per epoch.
func (p *Pretrainer) Apply(epoch, step, steps int) {
	pc := p.c.Pretrain
	p.opt.Step(p.net.Params(), p.net.Grads(), pc.Schedule.Rate(pc.LR, epoch, step, steps, pc.Epochs))
}

// Weighted is a part's statistic as the terms of the global step's: loss
// and accuracy times the part's share, class loss and accuracy times its
// labeled share. Summed over the parts (an all-reduce), they are the
// statistic one process computes on the whole step (Unweighted reads it).
func Weighted(s job.StepStat, share, labeledShare float32) [4]float32 {
	return [4]float32{float32(s.Loss) * share, float32(s.Accuracy) * share,
		float32(s.ClassLoss) * labeledShare, float32(s.ClassAccuracy) * labeledShare}
}

// Unweighted is the global step's statistic from the sum of its parts'
// Weighted terms, for a step of images images.
func Unweighted(sum [4]float32, images int) job.StepStat {
	return job.StepStat{Images: images, Loss: float64(sum[0]), Accuracy: float64(sum[1]),
		ClassLoss: float64(sum[2]), ClassAccuracy: float64(sum[3])}
}
