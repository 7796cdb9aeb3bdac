package job

import "math/rand/v2"

// Epoch is the plan of one pretraining epoch, the only one every role
// follows (the coordinator's assignments, the workers' batches, the
// single-process loop of `whorl run --local` and the test fakes): the
// training images in the epoch's order, cut into global batches of
// GlobalBatch images, each split over the ring's ranks at the time the step
// runs.
//
// Coverage is exactly once for any membership history: the global batches
// depend only on (ids, seed, epoch, batch), never on the workers, and a
// step's batch is split over whatever ring runs it. After a membership
// change the coordinator re-plans the remaining steps with the new world
// (Part with the new rank and world); the steps already done keep theirs.
type Epoch struct {
	order []int
	batch int
	steps int
}

// PlanEpoch is epoch's plan of the training image ids (in any fixed order)
// with global batches of batch images. ids is not modified.
func PlanEpoch(ids []int, seed uint64, epoch, batch int) Epoch {
	return Epoch{order: EpochOrder(ids, seed, epoch), batch: batch, steps: NumSteps(len(ids), batch)}
}

// Steps is the number of global steps of the epoch.
func (e Epoch) Steps() int { return e.steps }

// Order is the epoch's order of the images (shared; do not modify).
func (e Epoch) Order() []int { return e.order }

// Batch is the global batch of step (nil outside 0..Steps()-1): the images
// every rank together trains on in that step.
func (e Epoch) Batch(step int) []int {
	if step < 0 || step >= e.steps {
		return nil
	}
	lo, hi := step*e.batch, (step+1)*e.batch
	if step == e.steps-1 {
		hi = len(e.order)
	}
	return e.order[lo:hi]
}

// Part is rank's share of step's global batch in a ring of world ranks (see
// SplitRank).
func (e Epoch) Part(step, rank, world int) []int { return SplitRank(e.Batch(step), rank, world) }

// NumSteps is the number of global batches of batch images an epoch of n
// images is cut into. A remainder of fewer than batch/2 images is merged
// into the last batch (so every step has at least batch/2 images and the
// count does not depend on the number of workers); a larger remainder is a
// step of its own. n < batch gives one step of n images.
func NumSteps(n, batch int) int {
	if n <= 0 || batch <= 0 {
		return 0
	}
	steps, rem := n/batch, n%batch
	switch {
	case steps == 0:
		return 1
	case rem > 0 && rem >= (batch+1)/2:
		return steps + 1
	}
	return steps
}

// EpochOrder is the order of the training images in epoch: ids permuted by
// a PCG generator seeded with (seed, epoch). ids is not modified.
func EpochOrder(ids []int, seed uint64, epoch int) []int {
	out := append([]int(nil), ids...)
	r := rand.New(rand.NewPCG(seed, uint64(epoch)))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// SplitRank returns rank's contiguous part of a global batch split over world
// ranks; part sizes differ by at most one (lower ranks get the extra images).
func SplitRank(batch []int, rank, world int) []int {
	if world <= 0 || rank < 0 || rank >= world {
		return nil
	}
	base, extra := len(batch)/world, len(batch)%world
	lo := rank*base + min(rank, extra)
	size := base
	if rank < extra {
		size++
	}
	return batch[lo : lo+size]
}

// Position is where a pretraining run is: Step steps of 0-based Epoch
// done, so {Epoch, Step} is also the next step to train (Step 0 of the
// next epoch once an epoch ends). The single-process loop, the workers and
// the pretraining checkpoints all count with it.
type Position struct {
	Epoch int `json:"epoch"`
	Step  int `json:"step"`
}

// Before reports whether p is earlier than step of epoch.
func (p Position) Before(epoch, step int) bool {
	return p.Epoch < epoch || (p.Epoch == epoch && p.Step < step)
}
