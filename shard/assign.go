package shard

import "sort"

// Assign deals the training images of one epoch to workers: the images are
// put in the epoch's order (a hash of seed, epoch and image, independent of
// the order of images), cut into consecutive chunks of batch images (the
// last may be short), and chunk c goes to workers[c % len(workers)]. Every
// image goes to exactly one worker, none is repeated, and shard sizes differ
// by at most batch. Each shard is in consumption order: a worker's step s is
// shard[s*batch : (s+1)*batch], and the images of step s over all workers
// are the same for any number of workers with the same global batch
// (batch * len(workers)). batch < 1 counts as 1; with no workers the result
// is empty. Worker names should be distinct (a repeated name gets the
// chunks of both positions).
func Assign(epoch int, seed int64, images []int, workers []string, batch int) map[string][]int {
	return deal(epochOrder(epoch, seed, images), workers, batch)
}

// Reassign spreads the images of an epoch that were not yet consumed over
// a new worker list after a membership change: the remaining images keep
// their relative epoch order and are dealt like Assign, so together with
// the images already consumed the epoch sees each image exactly once.
func Reassign(epoch int, seed int64, remaining []int, workers []string, batch int) map[string][]int {
	return deal(epochOrder(epoch, seed, remaining), workers, batch)
}

// deal gives chunk c of order to workers[c % len(workers)].
func deal(order []int, workers []string, batch int) map[string][]int {
	out := make(map[string][]int, len(workers))
	if len(workers) == 0 {
		return out
	}
	batch = max(batch, 1)
	for _, w := range workers {
		out[w] = nil
	}
	for c, a := 0, 0; a < len(order); c, a = c+1, a+batch {
		w := workers[c%len(workers)]
		out[w] = append(out[w], order[a:min(a+batch, len(order))]...)
	}
	return out
}

// epochOrder returns images sorted by mix(seed, epoch, image), ties by
// image, so the order is a pure function of the set of images.
func epochOrder(epoch int, seed int64, images []int) []int {
	type keyed struct {
		key uint64
		img int
	}
	ks := make([]keyed, len(images))
	base := mix64(uint64(seed) ^ mix64(uint64(epoch)+0x9e3779b97f4a7c15))
	for i, img := range images {
		ks[i] = keyed{mix64(base ^ uint64(img)), img}
	}
	sort.Slice(ks, func(a, b int) bool {
		if ks[a].key != ks[b].key {
			return ks[a].key < ks[b].key
		}
		return ks[a].img < ks[b].img
	})
	out := make([]int, len(ks))
	for i, k := range ks {
		out[i] = k.img
	}
	return out
}

// mix64 is the splitmix64 finaliser: a fixed bijection of uint64.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
