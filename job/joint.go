package job

import (
	"math/rand/v2"

	"github.com/whorl-ml/whorl/internal/validate"
	"github.com/whorl-ml/whorl/shard"
)

// Training modes (Config.Mode).
const (
	// ModePretrainFinetune pretrains on the rotation task, then fine-tunes
	// on the labeled subset (the RotNet protocol; "" means this).
	ModePretrainFinetune = "pretrain-finetune"
	// ModeJoint trains the rotation task and the labeled classes at once,
	// every step adding the labeled batch's cross-entropy to the rotation
	// loss (Zhai et al. 2019, S4L-Rotation).
	ModeJoint = "joint"
)

// JointConfig is the joint mode's recipe; the rest (epochs over the
// training images, global batch of unlabeled images, optimizer, schedule,
// rotation augmentation) is Pretrain's.
type JointConfig struct {
	// Weight multiplies the labeled batch's mean cross-entropy (S4L: 1).
	Weight float64 `json:"weight"`
	// LabeledBatch is the number of labeled images per global step, drawn
	// by LabeledBatch from the labeled training images, each once at 0
	// degrees with the supervised augmentation.
	LabeledBatch int `json:"labeled_batch"`
	// FinetuneEpochs, when positive, fine-tunes the jointly trained network
	// on the labeled images with the supervised recipe for this many epochs
	// before it is evaluated (0 evaluates its class head as trained).
	FinetuneEpochs int `json:"finetune_epochs,omitempty"`
}

// DefaultJoint is the joint recipe `whorl run --mode joint` starts from:
// half as many labeled images per step as the global batch has unlabeled
// ones (each of those is four rows) and a weight of 0.3. Chosen on the
// validation images of the quick preset, seed 1 (42 images, so a coarse
// choice): weight 0.3 gave 71.4%, S4L's weight 1 61.9% (the labeled images
// were fitted to 97% and rotation accuracy fell from 72% to 65%), and 4
// labeled images per step made SGD at lr 0.1 diverge at either weight.
func DefaultJoint(c Config) JointConfig {
	return JointConfig{Weight: 0.3, LabeledBatch: max(1, c.Pretrain.GlobalBatch/2)}
}

// IsJoint reports whether c trains in the joint mode.
func (c Config) IsJoint() bool { return c.Mode == ModeJoint }

// PretrainOutputs is the width of the pretrained network's classifier: the
// four rotations, followed in the joint mode by the classes of the data.
func (c Config) PretrainOutputs(classes int) int {
	if c.IsJoint() {
		return shard.Rotations + classes
	}
	return shard.Rotations
}

// validateJoint checks the mode and, in the joint mode, its recipe.
func (c Config) validateJoint(p *validate.Problems) {
	if c.Mode != "" {
		validate.OneOf(p, "mode", c.Mode, ModePretrainFinetune, ModeJoint)
	}
	if !c.IsJoint() {
		if c.Joint != (JointConfig{}) {
			p.Addf("joint", "is set but mode is %q: set mode %q or leave joint out", c.Mode, ModeJoint)
		}
		return
	}
	if c.Model.PretextBlocks != 0 {
		p.Addf("model.pretext_blocks", "= %d with mode %q: the joint mode trains its class head on the network's last block, so it keeps every block; leave pretext_blocks out", c.Model.PretextBlocks, ModeJoint)
	}
	validate.InRange(p, "joint.weight", c.Joint.Weight, 1e-6, 1000)
	validate.InRange(p, "joint.labeled_batch", c.Joint.LabeledBatch, 1, 65_536)
	validate.InRange(p, "joint.finetune_epochs", c.Joint.FinetuneEpochs, 0, 10_000)
}

// labeledSalt separates the labeled draws' generators from the epoch
// order's and the augmentation's.
const labeledSalt = 0x6c6162656c6564

// LabeledBatch is the labeled images of global step (epoch, step) of the
// joint mode, with steps steps per epoch and batch images per step: the
// labeled ids (in any fixed order) are consumed batch by batch through a
// sequence of permutations, one per pass over them, each drawn by a PCG
// generator seeded with (seed, pass). Like the epoch plan it depends only
// on the job, never on the workers. labeled is not modified.
func LabeledBatch(labeled []int, seed uint64, epoch, step, steps, batch int) []int {
	n := len(labeled)
	if n == 0 || batch <= 0 {
		return nil
	}
	out := make([]int, batch)
	first := (epoch*steps + step) * batch
	pass, perm := -1, []int(nil)
	for k := range out {
		pos := first + k
		if pos/n != pass {
			pass = pos / n
			perm = passOrder(labeled, seed, pass)
		}
		out[k] = perm[pos%n]
	}
	return out
}

// passOrder is pass's permutation of the labeled ids.
func passOrder(labeled []int, seed uint64, pass int) []int {
	out := append([]int(nil), labeled...)
	r := rand.New(rand.NewPCG(seed^labeledSalt, uint64(pass)))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
