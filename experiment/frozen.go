package experiment

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
)

// The networks whose frozen features are evaluated, in report order.
const (
	// NetPretrained is the rotation-pretrained network (its body; the
	// rotation head is not used).
	NetPretrained = "pretrained"
	// NetBaseline is the supervised baseline trained on the labeled subset.
	NetBaseline = "baseline"
	// NetRandom is a randomly initialised network of the same architecture:
	// the floor that shows what training bought at each depth.
	NetRandom = "random"
)

// defaultProbeWeightDecay is the probes' penalty when there are no
// validation images to choose one.
const defaultProbeWeightDecay = 1e-2

// FrozenResult evaluates one network's frozen features, block by block.
type FrozenResult struct {
	Network string        `json:"network"`
	Blocks  []BlockResult `json:"blocks"`
	Seconds float64       `json:"seconds"`
}

// BlockResult is the evaluation of one feature block's global-average-pooled
// output.
type BlockResult struct {
	// Block is 1-based (model.Net.Features' upto).
	Block int `json:"block"`
	// Dim is the number of features (the block's output channels).
	Dim   int          `json:"dim"`
	Probe *ProbeResult `json:"linear_probe,omitempty"`
	KNN   *KNNResult   `json:"knn,omitempty"`
}

// ProbeResult is a linear probe's accuracy with the penalty validation chose.
type ProbeResult struct {
	TestAccuracy       float64 `json:"test_accuracy"`
	ValidationAccuracy float64 `json:"validation_accuracy"`
	WeightDecay        float64 `json:"weight_decay"`
}

// KNNResult is the weighted kNN's accuracy with the labeled training images
// as the memory bank.
type KNNResult struct {
	TestAccuracy       float64 `json:"test_accuracy"`
	ValidationAccuracy float64 `json:"validation_accuracy"`
	K                  int     `json:"k"`
	Temperature        float64 `json:"temperature"`
}

// pooledSet is one image set's pooled features, per block, and labels.
type pooledSet struct {
	blocks []matrix
	labels []int
}

// EvaluateFrozen runs the evaluations e asks for on the frozen features of
// n (in evaluation mode; n is not changed): a linear probe and a kNN per
// block, trained on d's labeled training images, chosen on its validation
// images and reported on its test images.
func EvaluateFrozen(ctx context.Context, name string, n *model.Net, d *job.Data, e job.EvalConfig) (FrozenResult, error) {
	t0 := time.Now()
	sets := make([]pooledSet, 3)
	for i, idx := range [][]int{d.LabeledTrain, d.Validation, d.Split.Test} {
		var err error
		if sets[i], err = poolFeatures(ctx, n, d, idx); err != nil {
			return FrozenResult{}, fmt.Errorf("frozen features of the %s network: %w", name, err)
		}
	}
	res := FrozenResult{Network: name, Blocks: make([]BlockResult, n.NumBlocks())}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for b := range res.Blocks {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("frozen features of the %s network: %w", name, err)
			}
			res.Blocks[b] = evaluateBlock(b, sets[0], sets[1], sets[2], len(d.Set.Classes), e)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return FrozenResult{}, err
	}
	res.Seconds = time.Since(t0).Seconds()
	return res, nil
}

// evaluateBlock probes block b of the three sets.
func evaluateBlock(b int, train, val, test pooledSet, classes int, e job.EvalConfig) BlockResult {
	tr, va, te := train.blocks[b], val.blocks[b], test.blocks[b]
	br := BlockResult{Block: b + 1, Dim: tr.dim}
	if e.LinearProbes {
		br.Probe = probeBlock(tr, va, te, train.labels, val.labels, test.labels, classes)
	}
	if e.KNN {
		knn := newKNN(tr, train.labels, classes, e.KNNK, e.KNNTemperature)
		br.KNN = &KNNResult{TestAccuracy: knn.accuracy(te, test.labels), ValidationAccuracy: knn.accuracy(va, val.labels),
			K: knn.k, Temperature: e.KNNTemperature}
	}
	return br
}

// probeBlock fits a probe per penalty on the standardised training
// features, keeps the one most accurate on validation (ties: the lower
// validation loss, then the stronger penalty) and measures it on test.
func probeBlock(tr, va, te matrix, ytr, yva, yte []int, classes int) *ProbeResult {
	s := fitStandardizer(tr)
	tr, va, te = s.apply(tr), s.apply(va), s.apply(te)
	decays := probeWeightDecays
	if va.n == 0 {
		decays = []float64{defaultProbeWeightDecay}
	}
	var best *linearProbe
	var bestAcc, bestLoss float64
	res := &ProbeResult{}
	for _, wd := range decays {
		p := trainProbe(tr, ytr, classes, wd)
		acc, loss := p.evaluate(va, yva)
		if best == nil || acc > bestAcc || (acc == bestAcc && loss < bestLoss) {
			best, bestAcc, bestLoss, res.WeightDecay = p, acc, loss, wd
		}
	}
	res.ValidationAccuracy = bestAcc
	res.TestAccuracy, _ = best.evaluate(te, yte)
	return res
}

// poolFeatures returns the pooled features of every block for images idx,
// without augmentation, with n in evaluation mode.
func poolFeatures(ctx context.Context, n *model.Net, d *job.Data, idx []int) (pooledSet, error) {
	set := pooledSet{blocks: make([]matrix, n.NumBlocks())}
	err := evalClassBatches(n, d, idx, func(x []float32, labels []int) error {
		feats, err := n.PooledFeatures(ctx, x, len(labels))
		if err != nil {
			return err
		}
		for b, f := range feats {
			m := &set.blocks[b]
			m.dim = len(f) / len(labels)
			m.n += len(labels)
			for _, v := range f {
				m.v = append(m.v, float64(v))
			}
		}
		set.labels = append(set.labels, labels...)
		return nil
	})
	return set, err
}
