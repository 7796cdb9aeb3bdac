package worker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

// netReplica is the real replica: a model.Net on the rotation task with the
// job's SGD, fed by an imageSource.
type netReplica struct {
	cfg    experiment.Config
	digest string // experiment.ConfigDigest of cfg
	net    *model.Net
	opt    *model.SGD
	src    imageSource
	norm   shard.Normalizer
	aug    shard.Augment
	x      []float32
	labels []int
	one    []float32 // one image at four rotations
	oneLab []int
}

// imageSource gives the decoded images of a step: a dataset and the indices
// of ids in it.
type imageSource interface {
	images(ctx context.Context, ids []int) (*shard.Dataset, []int, error)
}

// newNetReplica builds the job's network from the config seed.
func newNetReplica(cfg experiment.Config, a Assignment, src imageSource) (*netReplica, error) {
	net, err := experiment.NewNet(cfg, shard.Rotations, int64(cfg.Seed))
	if err != nil {
		return nil, err
	}
	p := cfg.Pretrain
	return &netReplica{cfg: cfg, digest: experiment.ConfigDigest(cfg), net: net,
		opt:  model.NewSGD(model.SGDConfig{Momentum: p.Momentum, WeightDecay: p.WeightDecay, Nesterov: p.Nesterov}),
		src:  src,
		norm: shard.Normalizer{Mean: a.Mean, Std: a.Std},
		aug:  shard.Augment{Pad: p.Augmentation.CropPad, Flip: p.Augmentation.Flip},
	}, nil
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

// ComputeGrads builds the rotation batch of the step's images and runs
// forward and backward with BatchNorm synchronised through c.
func (r *netReplica) ComputeGrads(ctx context.Context, c Collective, w StepWork, epoch int, scale float32) (StepStats, error) {
	if err := r.batch(ctx, w, epoch); err != nil {
		return StepStats{}, err
	}
	if c != nil {
		r.net.SetReducer(c)
	} else {
		r.net.SetReducer(nil)
	}
	r.net.SetTraining(true)
	r.net.ZeroGrads()
	loss, correct, err := r.net.TrainStep(ctx, r.x, r.labels, scale)
	if err != nil {
		return StepStats{}, fmt.Errorf("train step: %w", err)
	}
	return StepStats{Loss: loss, Accuracy: float64(correct) / float64(max(1, len(r.labels)))}, nil
}

// batch fills x and labels with the step's images at four rotations,
// rotation-major like shard.RotationBatch. Each image's augmentation is
// drawn from its own generator seeded by (job seed, image, epoch, step), so
// it does not depend on how the global batch is split over workers.
func (r *netReplica) batch(ctx context.Context, w StepWork, epoch int) error {
	d, idx, err := r.src.images(ctx, w.IDs)
	if err != nil {
		return fmt.Errorf("images of step %d: %w", w.Step, err)
	}
	n, sample := len(idx), 3*d.Size*d.Size
	r.x = grow(r.x, shard.Rotations*n*sample)
	if cap(r.labels) < shard.Rotations*n {
		r.labels = make([]int, shard.Rotations*n)
	}
	r.labels = r.labels[:shard.Rotations*n]
	for k, i := range idx {
		rng := rand.New(rand.NewPCG(r.cfg.Seed^uint64(w.IDs[k])*0x9e3779b97f4a7c15, uint64(epoch)<<32|uint64(w.Step)))
		r.one, r.oneLab = shard.RotationBatch(d, []int{i}, r.norm, r.aug, rng, r.one, r.oneLab)
		for rot := range shard.Rotations {
			s := rot*n + k
			copy(r.x[s*sample:(s+1)*sample], r.one[rot*sample:(rot+1)*sample])
			r.labels[s] = r.oneLab[rot]
		}
	}
	return nil
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Apply takes the SGD step with the job's learning-rate schedule.
func (r *netReplica) Apply(epoch, step, steps int) error {
	p := r.cfg.Pretrain
	r.opt.Step(r.net.Params(), r.net.Grads(), p.Schedule.Rate(p.LR, epoch, step, steps, p.Epochs))
	return nil
}

// Checkpoint encodes the network and optimizer with the position in the
// experiment package's metadata keys, so experiment.FineTune and
// `whorl run`'s resume read it.
func (r *netReplica) Checkpoint(pos Position) ([]byte, error) {
	meta := map[string]string{experiment.MetaEpoch: strconv.Itoa(pos.Epoch),
		experiment.MetaStep: strconv.Itoa(pos.Step), experiment.MetaConfigDigest: r.digest}
	b, err := model.EncodeCheckpoint(r.net, r.opt, meta)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	return b, nil
}

// Restore loads a checkpoint of the same job into the replica.
func (r *netReplica) Restore(data []byte) (Position, error) {
	ck, err := model.DecodeCheckpoint(data)
	if err != nil {
		return Position{}, err
	}
	if d := ck.Meta[experiment.MetaConfigDigest]; d != r.digest {
		return Position{}, fmt.Errorf("%w: checkpoint of config %.12s, job config %.12s", model.ErrCheckpoint, d, r.digest)
	}
	if len(ck.Net.Params()) != r.net.NumParams() || len(ck.Net.State()) != len(r.net.State()) {
		return Position{}, fmt.Errorf("%w: checkpoint network differs from the job's", model.ErrCheckpoint)
	}
	if err := ck.RestoreOptimizer(r.opt); err != nil {
		return Position{}, err
	}
	copy(r.net.Params(), ck.Net.Params())
	copy(r.net.State(), ck.Net.State())
	var pos Position
	if pos.Epoch, err = strconv.Atoi(ck.Meta[experiment.MetaEpoch]); err != nil {
		return Position{}, fmt.Errorf("%w: epoch: %w", model.ErrCheckpoint, err)
	}
	if pos.Step, err = strconv.Atoi(ck.Meta[experiment.MetaStep]); err != nil {
		return Position{}, fmt.Errorf("%w: step: %w", model.ErrCheckpoint, err)
	}
	return pos, nil
}
