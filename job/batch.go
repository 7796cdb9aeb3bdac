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
	// Aug is the pretraining augmentation (Config.Pretrain.Augmentation).
	Aug shard.Augment
	// LabeledAug is the augmentation of the joint mode's labeled images
	// (the supervised recipe's).
	LabeledAug shard.Augment
	// Sizes is the side of each epoch's images (Config.PretrainSizes:
	// the resolution curriculum); an epoch past its end, or a Batcher
	// without it, renders at the augmentations' own Size.
	Sizes []int

	pcg    rand.PCG
	rng    *rand.Rand
	x      []float32
	labels []int
}

// NewBatcher is the batcher of job c with the normaliser of its training
// images.
func NewBatcher(c Config, norm shard.Normalizer) *Batcher {
	return &Batcher{Seed: c.Seed, Norm: norm, Aug: c.Pretrain.Augmentation.Shard(c.Data.ImageSize),
		LabeledAug: c.Supervised.Augmentation.Shard(c.Data.ImageSize), Sizes: c.PretrainSizes()}
}

// SizeAt is the side of epoch's images (Sizes', or Aug.Size): the
// network's input size for the epoch's steps.
func (b *Batcher) SizeAt(epoch int) int {
	if epoch >= 0 && epoch < len(b.Sizes) {
		return b.Sizes[epoch]
	}
	return b.Aug.Size
}

// Shard is the augmentation a that renders images of side size.
func (a AugmentConfig) Shard(size int) shard.Augment {
	out := shard.Augment{Pad: a.CropPad, Flip: a.Flip, Size: size, Gray: a.Grayscale,
		Jitter: shard.ColorJitter{Brightness: a.ColorJitter.Brightness, Contrast: a.ColorJitter.Contrast,
			Saturation: a.ColorJitter.Saturation, Prob: a.ColorJitter.Prob}}
	if len(a.CropScale) == 2 {
		ratio := a.CropRatio
		if len(ratio) != 2 {
			ratio = DefaultCropRatio
		}
		out.Crop = shard.ResizedCrop{MinScale: a.CropScale[0], MaxScale: a.CropScale[1], MinRatio: ratio[0], MaxRatio: ratio[1]}
	}
	return out
}

// EvalAugment renders images of side size without augmentation (the
// evaluations'): the whole stored photo, resampled when stored larger.
func EvalAugment(size int) shard.Augment { return shard.Augment{Size: size} }

// Build returns the rotation batch of images ids of step (epoch, step); idx
// are the positions of ids in d (the same slice when d holds every image).
func (b *Batcher) Build(d *shard.Dataset, idx, ids []int, epoch, step int) ([]float32, []int) {
	aug := b.Aug
	aug.Size = b.SizeAt(epoch)
	b.x, b.labels = shard.RotationBatchEach(d, idx, b.Norm, aug, b.rngOf(ids, 0, epoch, step), b.x, b.labels)
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
	lab := b.LabeledAug
	lab.Size = b.SizeAt(epoch)
	s := lab.OutSize(d)
	rot, extra := len(x), len(labIDs)*3*s*s
	if cap(x) < rot+extra {
		grown := make([]float32, rot+extra)
		copy(grown, x)
		x = grown
	}
	x = x[:rot+extra]
	shard.ImagesEach(d, labIdx, b.Norm, lab, b.rngOf(labIDs, labeledSalt, epoch, step), x[rot:])
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
