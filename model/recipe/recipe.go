package recipe

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
)

// Net builds c's network with classes outputs, its weights drawn from seed.
func Net(c job.Config, classes int, seed int64) (*model.Net, error) {
	n, err := model.New(netConfig(c, classes), seed)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", c.Model.Name, err)
	}
	return n, nil
}

// Footprint counts c's network (classes outputs) in training at batch
// images per step, without building it (model.MeasureFootprint).
func Footprint(c job.Config, classes, batch int) (model.Footprint, error) {
	f, err := model.MeasureFootprint(netConfig(c, classes), batch)
	if err != nil {
		return f, fmt.Errorf("measure %s: %w", c.Model.Name, err)
	}
	return f, nil
}

// netConfig is the engine configuration of c's network with classes
// outputs.
func netConfig(c job.Config, classes int) model.Config {
	mc := model.DefaultConfig(c.Model.Name)
	mc.InputSize, mc.Classes = c.Data.ImageSize, classes
	if c.Model.IsResNet() {
		mc.Stem, mc.ZeroInitResidual = c.Model.Stem, c.Model.ZeroInitResidual
	}
	if c.Model.Width != 0 {
		mc.Width = c.Model.Width
	}
	return mc
}

// PretrainNet is c's pretraining network seeded from the job seed: the
// initial weights of every replica and of the single-process loop. Its
// classifier has c.PretrainOutputs(classes) outputs: the 4 rotations, then
// in the joint mode the data's classes; it has model.pretext_blocks feature
// blocks beyond the model's (FeatureNet drops them).
func PretrainNet(c job.Config, classes int) (*model.Net, error) {
	mc := netConfig(c, c.PretrainOutputs(classes))
	mc.Blocks += c.Model.PretextBlocks
	n, err := model.New(mc, int64(c.Seed))
	if err != nil {
		return nil, fmt.Errorf("build the pretext %s: %w", c.Model.Name, err)
	}
	return n, nil
}

// FeatureNet is the model's part of a pretrained network: pre itself, or,
// when the job pretrained extra blocks (model.pretext_blocks), a network of
// the model's blocks with pre's weights and statistics and a fresh head
// (the blocks fine-tuning and the frozen-feature evaluations take).
func FeatureNet(c job.Config, pre *model.Net) (*model.Net, error) {
	want := c.Model.Blocks()
	if pre.NumBlocks() == want {
		return pre, nil
	}
	n, err := pre.Truncate(want, int64(c.Seed)+featureHeadSeed)
	if err != nil {
		return nil, fmt.Errorf("the %s features of a %d-block pretext network: %w", c.Model.Name, pre.NumBlocks(), err)
	}
	return n, nil
}

// featureHeadSeed separates the seed of FeatureNet's head from the others.
const featureHeadSeed = 8000

// StatefulOptimizer is an optimiser whose state a checkpoint restores.
type StatefulOptimizer interface {
	model.Optimizer
	SetState(s []float32, n int) error
}

// PretrainOptimizer is c's pretraining optimiser: SGD, or Adam when
// pretrain.optimizer is "adam".
func PretrainOptimizer(c job.Config) StatefulOptimizer {
	p := c.Pretrain
	if p.Optimizer == job.OptimizerAdam {
		a := model.DefaultAdamConfig()
		a.WeightDecay = p.WeightDecay
		return model.NewAdam(a)
	}
	return model.NewSGD(model.SGDConfig{Momentum: p.Momentum, WeightDecay: p.WeightDecay, Nesterov: p.Nesterov})
}

// SupervisedOptimizer is the optimiser the supervised recipe names.
func SupervisedOptimizer(s job.SupervisedConfig) model.Optimizer {
	if s.Optimizer == job.OptimizerSGD {
		return model.NewSGD(model.SGDConfig{Momentum: s.Momentum, WeightDecay: s.WeightDecay, Nesterov: s.Nesterov})
	}
	a := model.DefaultAdamConfig()
	a.WeightDecay = s.WeightDecay
	return model.NewAdam(a)
}

// Progress is a pretraining checkpoint's position and what the run measured
// before it: the finished epochs' statistics (nil: none recorded) and the
// steps of the epoch in progress (Partial: its first Step steps, or nil), so
// that a resumed epoch's statistic is the uninterrupted one's.
type Progress struct {
	job.Position
	History []job.EpochStat
	Partial []job.StepStat
}

// EncodePretrain encodes a pretraining checkpoint of job c at p.
func EncodePretrain(c job.Config, n *model.Net, opt model.Optimizer, p Progress) ([]byte, error) {
	meta, err := PretrainMeta(c, p)
	if err != nil {
		return nil, err
	}
	b, err := model.EncodeCheckpoint(n, opt, meta)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	return b, nil
}

// PretrainMeta is the metadata of a pretraining checkpoint of job c at p
// (for model.SaveCheckpoint; EncodePretrain uses it).
func PretrainMeta(c job.Config, p Progress) (map[string]string, error) {
	meta := map[string]string{job.MetaEpoch: strconv.Itoa(p.Epoch), job.MetaStep: strconv.Itoa(p.Step),
		job.MetaConfigDigest: job.Digest(c)}
	if p.History != nil {
		h, err := json.Marshal(p.History)
		if err != nil {
			return nil, fmt.Errorf("encode checkpoint history: %w", err)
		}
		meta[job.MetaHistory] = string(h)
	}
	if len(p.Partial) > 0 {
		if len(p.Partial) != p.Step {
			return nil, fmt.Errorf("encode checkpoint: %d step statistics of the epoch in progress, at step %d", len(p.Partial), p.Step)
		}
		b, err := json.Marshal(p.Partial)
		if err != nil {
			return nil, fmt.Errorf("encode checkpoint steps: %w", err)
		}
		meta[job.MetaPartial] = string(b)
	}
	return meta, nil
}

// RestorePretrain loads a pretraining checkpoint of job c into n and opt
// (the job's network and optimiser) and returns its progress. A checkpoint
// of another job or network is refused with model.ErrCheckpoint and n and
// opt are left as they were.
func RestorePretrain(c job.Config, data []byte, n *model.Net, opt model.Optimizer) (Progress, error) {
	ck, err := model.DecodeCheckpoint(data)
	if err != nil {
		return Progress{}, err
	}
	if d, want := ck.Meta[job.MetaConfigDigest], job.Digest(c); d != want {
		return Progress{}, fmt.Errorf("%w: checkpoint of job config %.12s, this job's is %.12s", model.ErrCheckpoint, d, want)
	}
	if len(ck.Net.Params()) != n.NumParams() || len(ck.Net.State()) != len(n.State()) {
		return Progress{}, fmt.Errorf("%w: checkpoint network differs from the job's", model.ErrCheckpoint)
	}
	p, err := progress(ck.Meta)
	if err != nil {
		return Progress{}, err
	}
	if err := ck.RestoreOptimizer(opt); err != nil {
		return Progress{}, err
	}
	copy(n.Params(), ck.Net.Params())
	copy(n.State(), ck.Net.State())
	return p, nil
}

// progress reads the position, history and partial-epoch keys of a
// checkpoint.
func progress(meta map[string]string) (Progress, error) {
	var p Progress
	var err error
	if p.Epoch, err = strconv.Atoi(meta[job.MetaEpoch]); err != nil || p.Epoch < 0 {
		return Progress{}, fmt.Errorf("%w: metadata %s %q is not an epoch", model.ErrCheckpoint, job.MetaEpoch, meta[job.MetaEpoch])
	}
	if p.Step, err = strconv.Atoi(meta[job.MetaStep]); err != nil || p.Step < 0 {
		return Progress{}, fmt.Errorf("%w: metadata %s %q is not a step", model.ErrCheckpoint, job.MetaStep, meta[job.MetaStep])
	}
	if h := meta[job.MetaHistory]; h != "" {
		if err := json.Unmarshal([]byte(h), &p.History); err != nil {
			return Progress{}, fmt.Errorf("%w: metadata %s: %w", model.ErrCheckpoint, job.MetaHistory, err)
		}
	}
	if s := meta[job.MetaPartial]; s != "" {
		if err := json.Unmarshal([]byte(s), &p.Partial); err != nil {
			return Progress{}, fmt.Errorf("%w: metadata %s: %w", model.ErrCheckpoint, job.MetaPartial, err)
		}
		if len(p.Partial) != p.Step {
			return Progress{}, fmt.Errorf("%w: metadata %s holds %d steps, but %s says %d were done", model.ErrCheckpoint,
				job.MetaPartial, len(p.Partial), job.MetaStep, p.Step)
		}
	}
	return p, nil
}
