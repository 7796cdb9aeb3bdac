package experiment

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
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

// BlockResult is the evaluation of one feature block's pooled output
// (global average, or a grid with job.EvalConfig.ProbeDims).
type BlockResult struct {
	// Block is 1-based (model.Net.Features' upto).
	Block int `json:"block"`
	// Dim is the number of features (the block's output channels, times
	// the grid's cells with a grid).
	Dim   int          `json:"dim"`
	Probe *ProbeResult `json:"linear_probe,omitempty"`
	KNN   *KNNResult   `json:"knn,omitempty"`
}

// ProbeResult is a linear probe's accuracy with the penalty validation or
// cross-validation chose.
type ProbeResult struct {
	TestAccuracy float64 `json:"test_accuracy"`
	// ValidationAccuracy is the chosen penalty's accuracy on the validation
	// images, or with Folds its cross-validated accuracy over every labeled
	// image (each held out once).
	ValidationAccuracy float64 `json:"validation_accuracy"`
	WeightDecay        float64 `json:"weight_decay"`
	// Folds is the cross-validation's (0: chosen on the validation images).
	Folds int `json:"folds,omitempty"`
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
		if sets[i], err = poolFeatures(ctx, n, d, idx, e.ProbeDims); err != nil {
			return FrozenResult{}, fmt.Errorf("frozen features of the %s network: %w", name, err)
		}
	}
	res := FrozenResult{Network: name, Blocks: make([]BlockResult, n.NumBlocks())}
	var folds []int
	if e.ProbeFolds > 0 {
		folds = foldOfRows(d, e.ProbeFolds)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for b := range res.Blocks {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("frozen features of the %s network: %w", name, err)
			}
			res.Blocks[b] = evaluateBlock(b, sets[0], sets[1], sets[2], len(d.Set.Classes), e, folds)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return FrozenResult{}, err
	}
	res.Seconds = time.Since(t0).Seconds()
	return res, nil
}

// evaluateBlock probes block b of the three sets; folds, when set, is the
// cross-validation fold of every labeled row (training rows, then
// validation rows).
func evaluateBlock(b int, train, val, test pooledSet, classes int, e job.EvalConfig, folds []int) BlockResult {
	tr, va, te := train.blocks[b], val.blocks[b], test.blocks[b]
	br := BlockResult{Block: b + 1, Dim: tr.dim}
	switch {
	case e.LinearProbes && folds != nil:
		br.Probe = probeBlockCV(stack(tr, va), append(slices.Clone(train.labels), val.labels...), te, test.labels, classes,
			folds, e.ProbeFolds)
	case e.LinearProbes:
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

// probeBlockCV chooses the penalty by k-fold cross-validation over the
// labeled rows x (fold of row i: folds[i]; the standardiser fitted on each
// fold's training rows), by the most held-out rows right (ties: the lower
// held-out loss, then the stronger penalty), then fits it on every labeled
// row and measures it on test.
func probeBlockCV(x matrix, y []int, te matrix, yte []int, classes int, folds []int, k int) *ProbeResult {
	parts := make([]cvFold, k)
	for f := range parts {
		parts[f] = splitFold(x, y, folds, f)
	}
	res := &ProbeResult{Folds: k}
	bestLoss := math.Inf(1)
	for _, wd := range probeWeightDecays {
		var ok, loss float64
		for _, p := range parts {
			acc, l := trainProbe(p.train, p.ytrain, classes, wd).evaluate(p.held, p.yheld)
			ok += acc * float64(p.held.n)
			loss += l * float64(p.held.n)
		}
		acc := ok / float64(x.n)
		if acc > res.ValidationAccuracy || (acc == res.ValidationAccuracy && loss < bestLoss) {
			res.ValidationAccuracy, res.WeightDecay, bestLoss = acc, wd, loss
		}
	}
	s := fitStandardizer(x)
	res.TestAccuracy, _ = trainProbe(s.apply(x), y, classes, res.WeightDecay).evaluate(s.apply(te), yte)
	return res
}

// cvFold is one fold's standardised training and held-out rows.
type cvFold struct {
	train, held   matrix
	ytrain, yheld []int
}

// splitFold holds out the rows of fold f and standardises both parts with
// the statistics of the others.
func splitFold(x matrix, y []int, folds []int, f int) cvFold {
	var p cvFold
	p.train.dim, p.held.dim = x.dim, x.dim
	for i := range x.n {
		if folds[i] == f {
			p.held.v, p.yheld = append(p.held.v, x.row(i)...), append(p.yheld, y[i])
			p.held.n++
		} else {
			p.train.v, p.ytrain = append(p.train.v, x.row(i)...), append(p.ytrain, y[i])
			p.train.n++
		}
	}
	s := fitStandardizer(p.train)
	p.train, p.held = s.apply(p.train), s.apply(p.held)
	return p
}

// stack returns the rows of a followed by those of b.
func stack(a, b matrix) matrix {
	return matrix{n: a.n + b.n, dim: a.dim, v: append(slices.Clone(a.v), b.v...)}
}

// foldOfRows is the fold (d.LabeledFolds) of every labeled row in the
// order EvaluateFrozen pools them: d.LabeledTrain, then d.Validation.
func foldOfRows(d *job.Data, k int) []int {
	of := map[int]int{}
	for f, ids := range d.LabeledFolds(k) {
		for _, i := range ids {
			of[i] = f
		}
	}
	out := make([]int, 0, len(d.LabeledTrain)+len(d.Validation))
	for _, i := range append(slices.Clone(d.LabeledTrain), d.Validation...) {
		out = append(out, of[i])
	}
	return out
}

// recalibrationImages bounds the training images RecalibrateBN reads.
const recalibrationImages = 1024

// RecalibrateBN sets n's BatchNorm running statistics to the average batch
// statistics of up to recalibrationImages training images (evenly spaced
// over d.Split.Train, unaugmented, in batches of evalBatch): what the
// random network needs before its frozen features are a fair floor (at
// initialisation its running statistics are 0 and 1, which normalise
// nothing).
func RecalibrateBN(ctx context.Context, n *model.Net, d *job.Data) error {
	idx := d.Split.Train
	if step := (len(idx) + recalibrationImages - 1) / recalibrationImages; step > 1 {
		var spaced []int
		for i := 0; i < len(idx); i += step {
			spaced = append(spaced, idx[i])
		}
		idx = spaced
	}
	return n.RecalibrateBN(ctx, func(yield func([]float32, int) error) error {
		var x []float32
		var labels []int
		return eachBatch(ctx, d, idx, evalBatch, func(set *shard.Dataset, at, _ []int) error {
			x, labels = shard.ClassBatch(set, at, d.Norm, job.EvalAugment(n.Config().InputSize), nil, x, labels)
			return yield(x, len(at))
		})
	})
}

// poolFeatures returns the pooled features of every block for images idx,
// without augmentation, with n in evaluation mode: global averages, or
// grids of at most dims values (job.EvalConfig.ProbeDims) when dims > 0.
func poolFeatures(ctx context.Context, n *model.Net, d *job.Data, idx []int, dims int) (pooledSet, error) {
	set := pooledSet{blocks: make([]matrix, n.NumBlocks())}
	err := evalClassBatches(ctx, n, d, idx, func(x []float32, labels []int) error {
		var feats [][]float32
		var err error
		if dims > 0 {
			feats, _, err = n.GridFeatures(ctx, x, len(labels), dims)
		} else {
			feats, err = n.PooledFeatures(ctx, x, len(labels))
		}
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
