package model

import (
	"context"
	"fmt"
)

// Batches hands its yield the input batches of one pass over some images, in order: x is NCHW
// float32 of batch images at the network's input size. It returns the first error of yield or of
// its own.
type Batches func(yield func(x []float32, batch int) error) error

// RecalibrateBN replaces every BatchNorm's running statistics by the average of the batch
// statistics over the batches given, computed in training mode without touching a parameter:
// PyTorch's torch.optim.swa_utils.update_bn (momentum None, num_batches_tracked counting the
// batches). A randomly initialised network has running means 0 and variances 1, which in
// evaluation mode leave its activations unnormalised; recalibrated, its frozen features are the
// floor they should be. The net's mode is restored; on error the statistics are partly updated.
func (n *Net) RecalibrateBN(ctx context.Context, batches Batches) error {
	was := n.Training()
	n.SetTraining(true)
	for _, u := range n.units {
		fill(u.bn.rmean, 0)
		fill(u.bn.rvar, 1)
		fill(u.bn.nbt, 0)
		u.bn.cumulative = true
	}
	defer func() {
		n.SetTraining(was)
		for _, u := range n.units {
			u.bn.cumulative = false
		}
	}()
	seen := 0
	err := batches(func(x []float32, batch int) error {
		seen += batch
		_, _, err := n.forwardBlocks(ctx, x, batch, len(n.body), nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("recalibrate batchnorm: %w", err)
	}
	if seen == 0 {
		return fmt.Errorf("recalibrate batchnorm: no images")
	}
	return nil
}
