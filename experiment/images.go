package experiment

import (
	"context"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/shard"
)

// prefetchRequests is how many upcoming batches a phase names to streamed
// data (job.Data.Prefetch; its Stream reads ahead the first few).
const prefetchRequests = 4

// eachBatch hands fn the images idx in consecutive batches of size, read
// through d (whole, or streamed with the next batches read ahead): the
// dataset holding them, each one's index in it, and the batch's ids.
func eachBatch(ctx context.Context, d *job.Data, idx []int, size int, fn func(set *shard.Dataset, at, part []int) error) error {
	for a := 0; a < len(idx); a += size {
		part := idx[a:min(a+size, len(idx))]
		var next [][]int
		for b := a + size; b < len(idx) && len(next) < prefetchRequests; b += size {
			next = append(next, idx[b:min(b+size, len(idx))])
		}
		d.Prefetch(next)
		set, at, err := d.Images(ctx, part)
		if err != nil {
			return err
		}
		if err := fn(set, at, part); err != nil {
			return err
		}
	}
	return nil
}
