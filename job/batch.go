package job

import (
	"math/rand/v2"

	"github.com/whorl-ml/whorl/shard"
)

// Batcher builds the rotation batches of a job's pretraining: the one batch
// function the workers and the single-process loop share, so a step trains
// on the same samples whoever computes it.
//
// Which images: the ids of a step (a global batch, or one rank's part of it;
// see Epoch). Which augmentation: image id's random crop and flip in step
// (epoch, step) are drawn from its own PCG generator seeded by (Seed, id,
// epoch, step), so they do not depend on the worker count or on the order of
// the ids. Which rotation order: rotation-major over the ids given, as
// shard.RotationBatch (sample r*len(ids)+k is ids[k] at r*90 degrees, label
// r).
//
// A Batcher reuses its buffers: the slices Build returns are valid until the
// next call. It is not safe for concurrent use.
type Batcher struct {
	// Seed is the job seed (Config.Seed).
	Seed uint64
	// Norm is the job's per-channel normaliser.
	Norm shard.Normalizer
	// Aug is the pretraining augmentation (see PretrainAugment).
	Aug shard.Augment
	// LabeledAug is the augmentation of the joint mode's labeled images
	// (the supervised recipe's).
	LabeledAug shard.Augment

	pcg    rand.PCG
	rng    *rand.Rand
	x      []float32
	labels []int
}

// NewBatcher is the batcher of job c with the normaliser of its training
// images.
func NewBatcher(c Config, norm shard.Normalizer) *Batcher {
	a := c.Supervised.Augmentation
	return &Batcher{Seed: c.Seed, Norm: norm, Aug: PretrainAugment(c), LabeledAug: shard.Augment{Pad: a.CropPad, Flip: a.Flip}}
}

// PretrainAugment is the augmentation of c's pretraining.
func PretrainAugment(c Config) shard.Augment {
	a := c.Pretrain.Augmentation
	return shard.Augment{Pad: a.CropPad, Flip: a.Flip}
}

// Build returns the rotation batch of images ids of step (epoch, step); idx
// are the positions of ids in d (the same slice when d holds every image).
func (b *Batcher) Build(d *shard.Dataset, idx, ids []int, epoch, step int) ([]float32, []int) {
	b.x, b.labels = shard.RotationBatchEach(d, idx, b.Norm, b.Aug, b.rngOf(ids, 0, epoch, step), b.x, b.labels)
	return b.x, b.labels
}

// BuildJoint returns the joint mode's batch of step (epoch, step): Build's
// rotation batch of ids (its samples and labels, first), followed by the
// labeled images labIDs (positions labIdx in d) once each at 0 degrees
// with LabeledAug, image labIDs[k]'s draw from a generator of its own
// seeded like Build's but apart from it. The caller holds the labeled
// images' classes.
func (b *Batcher) BuildJoint(d *shard.Dataset, idx, ids, labIdx, labIDs []int, epoch, step int) ([]float32, []int) {
	x, labels := b.Build(d, idx, ids, epoch, step)
	rot, extra := len(x), len(labIDs)*3*d.Size*d.Size
	if cap(x) < rot+extra {
		grown := make([]float32, rot+extra)
		copy(grown, x)
		x = grown
	}
	x = x[:rot+extra]
	shard.ImagesEach(d, labIdx, b.Norm, b.LabeledAug, b.rngOf(labIDs, labeledSalt, epoch, step), x[rot:])
	b.x = x
	return x, labels
}

// rngOf is the generator of image ids[k] in step (epoch, step), salt
// separating the labeled draws from the rotation batch's (0).
func (b *Batcher) rngOf(ids []int, salt uint64, epoch, step int) func(k int) *rand.Rand {
	if b.rng == nil {
		b.rng = rand.New(&b.pcg)
	}
	stream := uint64(epoch)<<32 | uint64(step)
	return func(k int) *rand.Rand {
		b.pcg.Seed(b.Seed^salt^uint64(ids[k])*0x9e3779b97f4a7c15, stream)
		return b.rng
	}
}
