package experiment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// PretrainSteps is the number of global steps of one pretraining epoch over
// n images (job.NumSteps: the cluster's count).
func PretrainSteps(c job.Config, n int) int { return job.NumSteps(n, c.Pretrain.GlobalBatch) }

// PretrainState is where a pretraining run is: the network, its optimizer
// and the position of the next step.
type PretrainState struct {
	Net *model.Net
	Opt model.Optimizer
	job.Position
	History []job.EpochStat
	// Partial are the step statistics of the epoch in progress (its first
	// Step steps), kept in checkpoints so a resumed epoch's statistic is
	// the uninterrupted one's.
	Partial []job.StepStat
}

// NewPretrainState is a fresh pretraining network seeded from the config
// (for data of classes classes: the joint mode's head has them), the same
// as every worker's replica starts from.
func NewPretrainState(c job.Config, classes int) (*PretrainState, error) {
	n, err := recipe.PretrainNet(c, classes)
	if err != nil {
		return nil, err
	}
	return &PretrainState{Net: n, Opt: recipe.PretrainOptimizer(c)}, nil
}

// ResumePretrain restores a pretraining checkpoint written for the same
// config and data of classes classes; a missing file gives (nil, nil).
func ResumePretrain(path string, c job.Config, classes int) (*PretrainState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resume pretraining: %w", err)
	}
	st, err := NewPretrainState(c, classes)
	if err != nil {
		return nil, err
	}
	p, err := recipe.RestorePretrain(c, data, st.Net, st.Opt)
	if err != nil {
		return nil, fmt.Errorf("resume pretraining from %s: %w; use another --out for another configuration or seed", path, err)
	}
	st.Position, st.History, st.Partial = p.Position, p.History, p.Partial
	return st, nil
}

// SavePretrain writes the state as a checkpoint at path.
func SavePretrain(path string, c job.Config, st *PretrainState) error {
	hist := st.History
	if hist == nil {
		hist = []job.EpochStat{}
	}
	meta, err := recipe.PretrainMeta(c, recipe.Progress{Position: st.Position, History: hist, Partial: st.Partial})
	if err == nil {
		err = model.SaveCheckpoint(path, st.Net, st.Opt, meta)
	}
	if err != nil {
		return fmt.Errorf("save pretraining checkpoint: %w", err)
	}
	return nil
}

// Pretrain runs single-process rotation pretraining from st to the end of
// the configured epochs. It follows the cluster's plan exactly: each global
// step is job.PlanEpoch's batch, built by job.Batcher, trained with the
// schedule's rate, and the epoch's loss and accuracy are job.EpochMean of
// its steps; so with the same config it ends where a cluster of any size
// ends (up to float summation order), and a resumed run draws what an
// uninterrupted one would. save (if not nil) is called every
// CheckpointEvery steps and at the end of every epoch.
func Pretrain(ctx context.Context, c job.Config, d *job.Data, st *PretrainState, save func(*PretrainState) error, progress func(Event)) error {
	run := &pretrainRun{c: c, d: d, st: st, save: save, progress: progress,
		trainer: recipe.NewPretrainer(c, st.Net, st.Opt, d.Norm), steps: PretrainSteps(c, len(d.Split.Train))}
	for ; st.Epoch < c.Pretrain.Epochs; st.Epoch, st.Step = st.Epoch+1, 0 {
		es, err := run.epoch(ctx)
		if err != nil {
			return err
		}
		st.History = append(st.History, es)
		run.report(Event{Epoch: st.Epoch + 1, Step: run.steps, Loss: es.Loss, Accuracy: es.Accuracy, ClassAccuracy: es.ClassAccuracy, EpochDone: true})
		st.Partial = nil
		if save != nil {
			next := *st
			next.Epoch, next.Step = st.Epoch+1, 0
			if err := save(&next); err != nil {
				return err
			}
		}
	}
	return nil
}

// pretrainRun is the state of one single-process pretraining.
type pretrainRun struct {
	c        job.Config
	d        *job.Data
	st       *PretrainState
	save     func(*PretrainState) error
	progress func(Event)
	trainer  *recipe.Pretrainer
	steps    int
}

// epoch trains the rest of the current epoch from st.Step, checkpointing
// every CheckpointEvery steps and when interrupted between steps.
func (r *pretrainRun) epoch(ctx context.Context) (job.EpochStat, error) {
	st := r.st
	plan := job.PlanEpoch(r.d.Split.Train, r.c.Seed, st.Epoch, r.c.Pretrain.GlobalBatch)
	// A resumed epoch goes on from the steps its checkpoint recorded (an
	// older checkpoint without them: from this process's steps only).
	var done []job.StepStat
	track := len(st.Partial) == st.Step
	if track {
		done = slices.Clone(st.Partial)
	} else {
		st.Partial = nil
	}
	start, seen := time.Now(), 0
	for ; st.Step < r.steps; st.Step++ {
		if err := ctx.Err(); err != nil { // interrupted between steps: keep the position
			if r.save != nil && (st.Step > 0 || st.Epoch > 0) {
				err = errors.Join(err, r.save(st))
			}
			return job.EpochStat{}, fmt.Errorf("pretrain epoch %d step %d: %w", st.Epoch+1, st.Step+1, err)
		}
		t0 := time.Now()
		r.prefetch(plan, st.Epoch, st.Step)
		ss, err := r.step(ctx, plan.Batch(st.Step))
		if err != nil {
			return job.EpochStat{}, fmt.Errorf("pretrain epoch %d step %d: %w", st.Epoch+1, st.Step+1, err)
		}
		ss.Seconds = time.Since(t0).Seconds()
		done, seen = append(done, ss), seen+ss.Images
		if track { // the checkpoint below holds the steps up to st.Step+1
			st.Partial = done[:len(done):len(done)]
		}
		sofar := job.EpochMean(st.Epoch+1, done)
		r.report(Event{Epoch: st.Epoch + 1, Step: st.Step + 1, Loss: sofar.Loss, Accuracy: sofar.Accuracy, ClassAccuracy: sofar.ClassAccuracy,
			SamplesPerSec: float64(4*seen) / time.Since(start).Seconds()})
		if err := r.checkpoint(); err != nil {
			return job.EpochStat{}, err
		}
	}
	return job.EpochMean(st.Epoch+1, done), nil // zero when resumed exactly at the end of an epoch
}

// step trains global batch ids at the current position: the whole step as
// one part (the joint mode's labeled images are the plan's
// job.LabeledBatch of the labeled training images, as the coordinator
// assigns them to the workers).
func (r *pretrainRun) step(ctx context.Context, ids []int) (job.StepStat, error) {
	st := r.st
	b := recipe.StepBatch{Epoch: st.Epoch, Step: st.Step, IDs: ids, Share: 1, LabeledShare: 1}
	if r.c.IsJoint() {
		b.LabeledIDs = r.labeled(st.Epoch, st.Step)
		b.Classes = make([]int, len(b.LabeledIDs))
		for k, id := range b.LabeledIDs {
			b.Classes[k] = r.d.Set.Items[id].Class
		}
	}
	set, idx, err := r.d.Images(ctx, append(ids[:len(ids):len(ids)], b.LabeledIDs...))
	if err != nil {
		return job.StepStat{}, fmt.Errorf("images: %w", err)
	}
	b.Set, b.Idx, b.LabeledIdx = set, idx[:len(ids)], idx[len(ids):]
	ss, err := r.trainer.Grads(ctx, b)
	if err != nil {
		return job.StepStat{}, err
	}
	r.trainer.Apply(st.Epoch, st.Step, r.steps)
	return ss, nil
}

// labeled is the joint mode's labeled images of a step.
func (r *pretrainRun) labeled(epoch, step int) []int {
	return job.LabeledBatch(r.d.LabeledTrain, r.c.Seed, epoch, step, r.steps, r.c.Joint.LabeledBatch)
}

// prefetch names the images of the steps after step to streamed data.
func (r *pretrainRun) prefetch(plan job.Epoch, epoch, step int) {
	var next [][]int
	for s := step + 1; s < min(step+1+prefetchRequests, r.steps); s++ {
		ids := plan.Batch(s)
		if r.c.IsJoint() {
			ids = append(ids[:len(ids):len(ids)], r.labeled(epoch, s)...)
		}
		next = append(next, ids)
	}
	r.d.Prefetch(next)
}

// checkpoint saves the position after the step just done every
// CheckpointEvery steps (the epoch's end is saved by Pretrain).
func (r *pretrainRun) checkpoint() error {
	st := r.st
	if r.save == nil || (st.Step+1)%r.c.CheckpointEvery != 0 || st.Step+1 >= r.steps {
		return nil
	}
	next := *st
	next.Step++
	return r.save(&next)
}

// report fills in the phase and sizes of an event and passes it on.
func (r *pretrainRun) report(e Event) {
	if r.progress != nil {
		e.Phase, e.Epochs, e.Steps = pb.Phase_PHASE_PRETRAINING, r.c.Pretrain.Epochs, r.steps
		r.progress(e)
	}
}
