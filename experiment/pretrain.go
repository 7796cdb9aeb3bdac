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
	p := c.Pretrain
	aug := shard.Augment{Pad: p.Augmentation.CropPad, Flip: p.Augmentation.Flip}
	steps := PretrainSteps(c, len(d.Split.Train))
	var x []float32
	var labels []int
	st.Net.SetTraining(true)
	for ; st.Epoch < p.Epochs; st.Epoch, st.Step = st.Epoch+1, 0 {
		order := shard.Assign(st.Epoch, int64(c.Seed), d.Split.Train, []string{"local"}, p.GlobalBatch)["local"]
		var lossSum float64
		var correct, seen int
		start := time.Now()
		for ; st.Step < steps; st.Step++ {
			if err := ctx.Err(); err != nil { // interrupted between steps: keep the position
				if save != nil && (st.Step > 0 || st.Epoch > 0) {
					err = errors.Join(err, save(st))
				}
				return fmt.Errorf("pretrain epoch %d step %d: %w", st.Epoch+1, st.Step+1, err)
			}
			imgs := stepImages(order, st.Step, steps, p.GlobalBatch)
			rng := rand.New(rand.NewPCG(c.Seed, uint64(st.Epoch)<<32|uint64(st.Step)))
			x, labels = shard.RotationBatch(d.Set, imgs, d.Norm, aug, rng, x, labels)
			st.Net.ZeroGrads()
			loss, ok, err := st.Net.TrainStep(ctx, x, labels, 1)
			if err != nil {
				return fmt.Errorf("pretrain epoch %d step %d: %w", st.Epoch+1, st.Step+1, err)
			}
			st.Opt.Step(st.Net.Params(), st.Net.Grads(), learningRate(p.Schedule, p.LR, st.Epoch, st.Step, steps, p.Epochs))
			lossSum += loss * float64(len(labels))
			correct, seen = correct+ok, seen+len(labels)
			if progress != nil {
				progress(Event{Phase: "pretrain", Epoch: st.Epoch + 1, Epochs: p.Epochs, Step: st.Step + 1, Steps: steps,
					Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen),
					SamplesPerSec: float64(seen) / time.Since(start).Seconds()})
			}
			if save != nil && (st.Step+1)%c.CheckpointEvery == 0 && st.Step+1 < steps {
				st.Step++
				err := save(st)
				st.Step--
				if err != nil {
					return err
				}
			}
		}
		es := EpochStat{Epoch: st.Epoch + 1}
		if seen > 0 { // zero when resumed exactly at the end of an epoch
			es.Loss, es.Accuracy = lossSum/float64(seen), float64(correct)/float64(seen)
		}
		st.History = append(st.History, es)
		if progress != nil {
			progress(Event{Phase: "pretrain", Epoch: st.Epoch + 1, Epochs: p.Epochs, Step: steps, Steps: steps,
				Loss: es.Loss, Accuracy: es.Accuracy, EpochDone: true})
		}
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
