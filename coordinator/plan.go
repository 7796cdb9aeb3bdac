package coordinator

import "math/rand/v2"

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

// StepBatch returns global batch step of an epoch order cut into batches of
// batch images (see NumSteps for the last batch).
func StepBatch(order []int, batch, step int) []int {
	steps := NumSteps(len(order), batch)
	if step < 0 || step >= steps {
		return nil
	}
	lo := step * batch
	hi := lo + batch
	if step == steps-1 {
		hi = len(order)
	}
	return order[lo:hi]
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
