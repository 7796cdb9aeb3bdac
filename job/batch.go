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

	pcg    rand.PCG
	rng    *rand.Rand
	x      []float32
	labels []int
}

// NewBatcher is the batcher of job c with the normaliser of its training
// images.
func NewBatcher(c Config, norm shard.Normalizer) *Batcher {
	return &Batcher{Seed: c.Seed, Norm: norm, Aug: PretrainAugment(c)}
}

// PretrainAugment is the augmentation of c's pretraining.
func PretrainAugment(c Config) shard.Augment {
	a := c.Pretrain.Augmentation
	return shard.Augment{Pad: a.CropPad, Flip: a.Flip}
}

// Build returns the rotation batch of images ids of step (epoch, step); idx
// are the positions of ids in d (the same slice when d holds every image).
func (b *Batcher) Build(d *shard.Dataset, idx, ids []int, epoch, step int) ([]float32, []int) {
	if b.rng == nil {
		b.rng = rand.New(&b.pcg)
	}
	stream := uint64(epoch)<<32 | uint64(step)
	rngOf := func(k int) *rand.Rand {
		b.pcg.Seed(b.Seed^uint64(ids[k])*0x9e3779b97f4a7c15, stream)
		return b.rng
	}
	b.x, b.labels = shard.RotationBatchEach(d, idx, b.Norm, b.Aug, rngOf, b.x, b.labels)
	return b.x, b.labels
}
