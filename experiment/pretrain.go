package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

// Checkpoint metadata keys written by the pretraining loops.
const (
	MetaEpoch        = "whorl.epoch"         // epochs completed before Step (0-based epoch in progress)
	MetaStep         = "whorl.step"          // steps of that epoch completed
	MetaConfigDigest = "whorl.config_sha256" // the job config the weights belong to
	MetaHistory      = "whorl.history"       // JSON []EpochStat of the finished epochs
)

// PretrainOptimizer builds the pretraining optimizer of c (SGD).
func PretrainOptimizer(c Config) model.Optimizer {
	p := c.Pretrain
	return model.NewSGD(model.SGDConfig{Momentum: p.Momentum, WeightDecay: p.WeightDecay, Nesterov: p.Nesterov})
}

// PretrainSteps is the number of global steps of one pretraining epoch over
// n images (the remainder is merged into the last step).
func PretrainSteps(c Config, n int) int { return max(1, n/c.Pretrain.GlobalBatch) }

// stepImages returns the images of global step s of an epoch's order (the
// last step takes the remainder).
func stepImages(order []int, s, steps, batch int) []int {
	end := (s + 1) * batch
	if s == steps-1 {
		end = len(order)
	}
	return order[s*batch : end]
}

// PretrainState is where a pretraining run is: the network, its optimizer
// and the position (epoch, step) of the next step.
type PretrainState struct {
	Net         *model.Net
	Opt         model.Optimizer
	Epoch, Step int
	History     []EpochStat
}

// NewPretrainState is a fresh 4-rotation network seeded from the config.
func NewPretrainState(c Config) (*PretrainState, error) {
	n, err := NewNet(c, shard.Rotations, int64(c.Seed))
	if err != nil {
		return nil, err
	}
	return &PretrainState{Net: n, Opt: PretrainOptimizer(c)}, nil
}

// ResumePretrain restores a pretraining checkpoint written for the same
// config; a missing file gives (nil, nil).
func ResumePretrain(path string, c Config) (*PretrainState, error) {
	ck, err := model.ReadCheckpoint(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resume pretraining: %w", err)
	}
	if ck.Meta[MetaConfigDigest] != ConfigDigest(c) {
		return nil, fmt.Errorf("resume pretraining from %s: it belongs to another configuration or seed; use another --out", path)
	}
	st := &PretrainState{Net: ck.Net, Opt: PretrainOptimizer(c)}
	if err := ck.RestoreOptimizer(st.Opt); err != nil {
		return nil, fmt.Errorf("resume pretraining from %s: %w", path, err)
	}
	st.Epoch, _ = strconv.Atoi(ck.Meta[MetaEpoch])
	st.Step, _ = strconv.Atoi(ck.Meta[MetaStep])
	if h := ck.Meta[MetaHistory]; h != "" {
		if err := json.Unmarshal([]byte(h), &st.History); err != nil {
			return nil, fmt.Errorf("resume pretraining from %s: history: %w", path, err)
		}
	}
	return st, nil
}

// SavePretrain writes the state as a checkpoint at path.
func SavePretrain(path string, c Config, st *PretrainState) error {
	meta := map[string]string{MetaEpoch: strconv.Itoa(st.Epoch), MetaStep: strconv.Itoa(st.Step),
		MetaConfigDigest: ConfigDigest(c)}
	if h, err := json.Marshal(st.History); err == nil {
		meta[MetaHistory] = string(h)
	}
	if err := model.SaveCheckpoint(path, st.Net, st.Opt, meta); err != nil {
		return fmt.Errorf("save pretraining checkpoint: %w", err)
	}
	return nil
}

// Pretrain runs single-process rotation pretraining from st to the end of
// the configured epochs: each global step is the images of the epoch order
// (shard.Assign's, the same as the distributed run's) at four rotations,
// augmented with a generator seeded by (seed, epoch, step) so a resumed run
// draws what an uninterrupted one would. save (if not nil) is called every
// CheckpointEvery steps and at the end of every epoch.
func Pretrain(ctx context.Context, c Config, d *Data, st *PretrainState, save func(*PretrainState) error, progress func(Event)) error {
	run := &pretrainRun{c: c, d: d, st: st, save: save, progress: progress,
		aug:   shard.Augment{Pad: c.Pretrain.Augmentation.CropPad, Flip: c.Pretrain.Augmentation.Flip},
		steps: PretrainSteps(c, len(d.Split.Train))}
	st.Net.SetTraining(true)
	for ; st.Epoch < c.Pretrain.Epochs; st.Epoch, st.Step = st.Epoch+1, 0 {
		es, err := run.epoch(ctx)
		if err != nil {
			return err
		}
		st.History = append(st.History, es)
		run.report(Event{Epoch: st.Epoch + 1, Step: run.steps, Loss: es.Loss, Accuracy: es.Accuracy, EpochDone: true})
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
	c        Config
	d        *Data
	st       *PretrainState
	save     func(*PretrainState) error
	progress func(Event)
	aug      shard.Augment
	steps    int
	x        []float32
	labels   []int
}

// epoch trains the rest of the current epoch from st.Step, checkpointing
// every CheckpointEvery steps and when interrupted between steps.
func (r *pretrainRun) epoch(ctx context.Context) (EpochStat, error) {
	st, p := r.st, r.c.Pretrain
	order := shard.Assign(st.Epoch, int64(r.c.Seed), r.d.Split.Train, []string{"local"}, p.GlobalBatch)["local"]
	var lossSum float64
	var correct, seen int
	start := time.Now()
	for ; st.Step < r.steps; st.Step++ {
		if err := ctx.Err(); err != nil { // interrupted between steps: keep the position
			if r.save != nil && (st.Step > 0 || st.Epoch > 0) {
				err = errors.Join(err, r.save(st))
			}
			return EpochStat{}, fmt.Errorf("pretrain epoch %d step %d: %w", st.Epoch+1, st.Step+1, err)
		}
		imgs := stepImages(order, st.Step, r.steps, p.GlobalBatch)
		rng := rand.New(rand.NewPCG(r.c.Seed, uint64(st.Epoch)<<32|uint64(st.Step)))
		r.x, r.labels = shard.RotationBatch(r.d.Set, imgs, r.d.Norm, r.aug, rng, r.x, r.labels)
		st.Net.ZeroGrads()
		loss, ok, err := st.Net.TrainStep(ctx, r.x, r.labels, 1)
		if err != nil {
			return EpochStat{}, fmt.Errorf("pretrain epoch %d step %d: %w", st.Epoch+1, st.Step+1, err)
		}
		st.Opt.Step(st.Net.Params(), st.Net.Grads(), p.Schedule.Rate(p.LR, st.Epoch, st.Step, r.steps, p.Epochs))
		lossSum += loss * float64(len(r.labels))
		correct, seen = correct+ok, seen+len(r.labels)
		r.report(Event{Epoch: st.Epoch + 1, Step: st.Step + 1, Loss: lossSum / float64(seen),
			Accuracy: float64(correct) / float64(seen), SamplesPerSec: float64(seen) / time.Since(start).Seconds()})
		if err := r.checkpoint(); err != nil {
			return EpochStat{}, err
		}
	}
	es := EpochStat{Epoch: st.Epoch + 1}
	if seen > 0 { // zero when resumed exactly at the end of an epoch
		es.Loss, es.Accuracy = lossSum/float64(seen), float64(correct)/float64(seen)
	}
	return es, nil
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
		e.Phase, e.Epochs, e.Steps = "pretrain", r.c.Pretrain.Epochs, r.steps
		r.progress(e)
	}
}
