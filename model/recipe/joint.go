package recipe

import (
	"context"
	"fmt"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

// JointStats is what one joint-mode forward and backward measured: the
// rotation rows' mean loss and accuracy, and the labeled rows'.
type JointStats struct {
	Loss, Accuracy           float64
	ClassLoss, ClassAccuracy float64
}

// JointStep runs the joint mode's forward and backward on a batch built by
// job.Batcher.BuildJoint: the rotation rows (rotLabels) then one row per
// labeled image (classes). The rotation rows are classified by the first 4
// outputs, the labeled rows by the rest; the gradient is of
// rotShare x the rotation rows' mean cross-entropy + joint.weight x
// labeledShare x the labeled rows' (the shares are this rank's parts of the
// step's rows, 1 in a single process), accumulated into n.Grads().
func JointStep(ctx context.Context, c job.Config, n *model.Net, x []float32, rotLabels, classes []int, rotShare, labeledShare float32) (JointStats, error) {
	k := n.Config().Classes - shard.Rotations
	if k < 1 {
		return JointStats{}, fmt.Errorf("joint step: the network has %d outputs, want 4 rotations + the classes", n.Config().Classes)
	}
	tasks := []model.Task{
		{Row: 0, Col: 0, Classes: shard.Rotations, Labels: rotLabels, Scale: rotShare},
		{Row: len(rotLabels), Col: shard.Rotations, Classes: k, Labels: classes, Scale: float32(c.Joint.Weight) * labeledShare},
	}
	res, err := n.TrainStepTasks(ctx, x, len(rotLabels)+len(classes), tasks)
	if err != nil {
		return JointStats{}, fmt.Errorf("joint step: %w", err)
	}
	return JointStats{
		Loss: res[0].Loss, Accuracy: ratio(res[0].Correct, len(rotLabels)),
		ClassLoss: res[1].Loss, ClassAccuracy: ratio(res[1].Correct, len(classes)),
	}, nil
}

// ClassNet narrows a jointly trained network to its class head: the
// classifier the joint mode's evaluation and fine-tuning start from.
func ClassNet(n *model.Net) *model.Net {
	c := n.Clone()
	c.KeepHeadRows(shard.Rotations, n.Config().Classes)
	return c
}

// RotationNet narrows a jointly trained network to its rotation head: the
// 4-rotation network of the pretrain-finetune mode (rotnet.py's layout), for
// the rotation accuracy, the frozen features and the pretrained checkpoint.
func RotationNet(n *model.Net) *model.Net {
	c := n.Clone()
	c.KeepHeadRows(0, shard.Rotations)
	return c
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
