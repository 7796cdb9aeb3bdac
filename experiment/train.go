package experiment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/shard"
)

// evalBatch is the batch size of evaluation passes (memory only; results do
// not depend on it because evaluation uses running statistics).
const evalBatch = 128

// Event is a progress report of a training phase, one per step and one per
// finished epoch (EpochDone).
type Event struct {
	Phase pb.Phase // PHASE_PRETRAINING, PHASE_BASELINE or PHASE_FINETUNING
	// Stage names a part of the phase with its own epochs: "" for the
	// phase itself, "self-training N" for round N's student.
	Stage         string
	Epoch, Epochs int // 1-based epoch
	Step, Steps   int // 1-based step within the epoch
	Loss          float64
	Accuracy      float64
	// ClassAccuracy is the joint mode's labeled images' accuracy.
	ClassAccuracy float64
	SamplesPerSec float64
	EpochDone     bool
}

// frozenPrefix is the number of leading parameters that belong to the
// first blocks feature blocks (parameters are in state_dict order).
func frozenPrefix(n *model.Net, blocks int) int {
	end := 0
	for _, s := range n.Specs() {
		if s.State {
			continue
		}
		if s.Block >= 0 && s.Block < blocks {
			end = max(end, s.Offset+s.Size)
		}
	}
	return end
}

// headOffset is where the classifier's parameters start (they are last).
func headOffset(n *model.Net) int {
	at := n.NumParams()
	for _, s := range n.Specs() {
		if !s.State && s.Block < 0 {
			at = min(at, s.Offset)
		}
	}
	return at
}

// ReinitBlocks copies the parameters and state of the last k feature
// blocks from a freshly initialised network of the same shape.
func ReinitBlocks(n *model.Net, k int, seed int64) error {
	if k == 0 {
		return nil
	}
	fresh, err := model.New(n.Config(), seed)
	if err != nil {
		return fmt.Errorf("re-initialise blocks: %w", err)
	}
	blocks := n.NumBlocks()
	for _, s := range fresh.Specs() {
		if s.Block < blocks-k || s.Block >= blocks {
			continue
		}
		if s.State {
			copy(n.State()[s.Offset:s.Offset+s.Size], fresh.State()[s.Offset:s.Offset+s.Size])
		} else {
			copy(n.Params()[s.Offset:s.Offset+s.Size], fresh.Params()[s.Offset:s.Offset+s.Size])
		}
	}
	return nil
}

// Supervised trains n on the labeled training images with recipe s and
// returns the per-epoch history (validation accuracy measured after each
// epoch). The data order and augmentation are drawn from seed, so the
// baseline and the fine-tuning see the same batches. The first freeze
// blocks stay fixed; the feature blocks learn at s.BodyLRScale times the
// head's rate.
func Supervised(ctx context.Context, n *model.Net, d *job.Data, s job.SupervisedConfig, freeze int, seed uint64,
	phase pb.Phase, progress func(Event)) ([]job.EpochStat, error) {
	return SupervisedOn(ctx, n, d, Examples{IDs: d.LabeledTrain}, s, freeze, seed, phase, progress)
}

// Examples are the images a supervised run trains on.
type Examples struct {
	// IDs are the images, in a fixed order (each epoch shuffles a copy).
	IDs []int
	// Pseudo gives the class of the images it holds (pseudo-labels); the
	// others have their dataset class.
	Pseudo map[int]int
	// Soft, when set, makes the run learn target distributions: the
	// images it holds learn theirs (a teacher's probabilities), the others
	// their class as a one-hot row.
	Soft map[int][]float32
}

// SupervisedOn is Supervised on the images ex instead of the labeled
// training images.
func SupervisedOn(ctx context.Context, n *model.Net, d *job.Data, ex Examples, s job.SupervisedConfig, freeze int, seed uint64,
	phase pb.Phase, progress func(Event)) ([]job.EpochStat, error) {
	run := &supervisedRun{n: n, d: d, s: s, phase: phase, progress: progress,
		body: recipe.SupervisedOptimizer(s), head: recipe.SupervisedOptimizer(s),
		skip: frozenPrefix(n, freeze), headAt: headOffset(n), bodyScale: s.BodyLRScale,
		aug: s.Augmentation.Shard(n.Config().InputSize),
		idx: append([]int(nil), ex.IDs...), pseudo: ex.Pseudo, soft: ex.Soft}
	if run.bodyScale == 0 {
		run.bodyScale = 1
	}
	run.steps = len(run.idx) / s.Batch
	if len(run.idx)%s.Batch >= 2 || run.steps == 0 {
		run.steps++ // keep a last partial batch of at least 2 (BatchNorm needs 2)
	}
	var hist []job.EpochStat
	for e := range s.Epochs {
		es, err := run.epoch(ctx, e, rand.New(rand.NewPCG(seed, uint64(e))))
		if err != nil {
			return hist, err
		}
		hist = append(hist, es)
	}
	return hist, nil
}

// supervisedRun is the state of one supervised training.
type supervisedRun struct {
	n            *model.Net
	d            *job.Data
	s            job.SupervisedConfig
	phase        pb.Phase
	progress     func(Event)
	body, head   model.Optimizer
	skip, headAt int
	bodyScale    float64
	aug          shard.Augment
	idx          []int
	pseudo       map[int]int
	soft         map[int][]float32
	targets      []float32
	steps        int
	x            []float32
	labels       []int
}

// epoch trains one epoch (order and augmentation from rng) and validates.
func (r *supervisedRun) epoch(ctx context.Context, e int, rng *rand.Rand) (job.EpochStat, error) {
	r.n.SetTraining(true)
	rng.Shuffle(len(r.idx), func(a, b int) { r.idx[a], r.idx[b] = r.idx[b], r.idx[a] })
	var lossSum float64
	var correct, seen int
	start := time.Now()
	for st := range r.steps {
		part := r.batch(st)
		r.prefetch(st)
		set, at, err := r.d.Images(ctx, part)
		if err != nil {
			return job.EpochStat{}, fmt.Errorf("%s epoch %d step %d: images: %w", r.phase.Label(), e+1, st+1, err)
		}
		r.x, r.labels = shard.ClassBatch(set, at, r.d.Norm, r.aug, rng, r.x, r.labels)
		for k, id := range part {
			if c, ok := r.pseudo[id]; ok {
				r.labels[k] = c
			}
		}
		r.n.ZeroGrads()
		loss, ok, err := r.trainStep(ctx, part)
		if err != nil {
			return job.EpochStat{}, fmt.Errorf("%s epoch %d step %d: %w", r.phase.Label(), e+1, st+1, err)
		}
		lr := r.s.Schedule.Rate(r.s.LR, e, st, r.steps, r.s.Epochs)
		p, g := r.n.Params(), r.n.Grads()
		if r.skip < r.headAt {
			r.body.Step(p[r.skip:r.headAt], g[r.skip:r.headAt], lr*r.bodyScale)
		}
		r.head.Step(p[r.headAt:], g[r.headAt:], lr)
		lossSum += loss * float64(len(part))
		correct, seen = correct+ok, seen+len(part)
		r.report(Event{Epoch: e + 1, Step: st + 1, Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen),
			SamplesPerSec: float64(seen) / time.Since(start).Seconds()})
	}
	es := job.EpochStat{Epoch: e + 1, Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen)}
	if len(r.d.Validation) > 0 {
		c, err := Classify(ctx, r.n, r.d, r.d.Validation)
		if err != nil {
			return job.EpochStat{}, fmt.Errorf("%s epoch %d: validate: %w", r.phase.Label(), e+1, err)
		}
		es.ValidationAccuracy = c.Accuracy()
	}
	r.report(Event{Epoch: e + 1, Step: r.steps, Loss: es.Loss, Accuracy: es.Accuracy, EpochDone: true})
	return es, nil
}

// batch is the images of step st of the current epoch's order.
func (r *supervisedRun) batch(st int) []int {
	return r.idx[st*r.s.Batch : min((st+1)*r.s.Batch, len(r.idx))]
}

// prefetch names the images of the steps after st to streamed data.
func (r *supervisedRun) prefetch(st int) {
	var next [][]int
	for s := st + 1; s < min(st+1+prefetchRequests, r.steps); s++ {
		next = append(next, r.batch(s))
	}
	r.d.Prefetch(next)
}

// trainStep runs forward and backward on the batch of images part (in
// r.x and r.labels): against the labels, or against target distributions
// when the run has soft targets.
func (r *supervisedRun) trainStep(ctx context.Context, part []int) (float64, int, error) {
	if r.soft == nil {
		return r.n.TrainStep(ctx, r.x, r.labels, 1)
	}
	k := r.n.Config().Classes
	r.targets = slices.Grow(r.targets[:0], len(part)*k)[:len(part)*k]
	for i, id := range part {
		row := r.targets[i*k : (i+1)*k]
		if t, ok := r.soft[id]; ok {
			copy(row, t)
			continue
		}
		clear(row)
		row[r.labels[i]] = 1
	}
	return r.n.TrainStepSoft(ctx, r.x, r.targets, 1)
}

// report fills in the phase and sizes of an event and passes it on.
func (r *supervisedRun) report(e Event) {
	if r.progress != nil {
		e.Phase, e.Epochs, e.Steps = r.phase, r.s.Epochs, r.steps
		r.progress(e)
	}
}

// Classify evaluates n (in evaluation mode) on images idx and returns the
// confusion matrix over the dataset's classes.
func Classify(ctx context.Context, n *model.Net, d *job.Data, idx []int) (Confusion, error) {
	k := len(d.Set.Classes)
	conf := NewConfusion(k)
	err := evalClassBatches(ctx, n, d, idx, func(x []float32, labels []int) error {
		logits, err := n.Forward(ctx, x, len(labels))
		if err != nil {
			return err
		}
		for i, t := range labels {
			if err := conf.Add(t, argmax(logits[i*k:(i+1)*k])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	return conf, nil
}

// evalClassBatches puts n in evaluation mode (restored on return) and hands
// fn images idx, unaugmented, in batches of evalBatch with their labels
// (valid until the next call).
func evalClassBatches(ctx context.Context, n *model.Net, d *job.Data, idx []int, fn func(x []float32, labels []int) error) error {
	wasTraining := n.Training()
	n.SetTraining(false)
	defer n.SetTraining(wasTraining)
	var x []float32
	var labels []int
	return eachBatch(ctx, d, idx, evalBatch, func(set *shard.Dataset, at, _ []int) error {
		x, labels = shard.ClassBatch(set, at, d.Norm, job.EvalAugment(n.Config().InputSize), nil, x, labels)
		return fn(x, labels)
	})
}

// RotationAccuracy is the pretext accuracy of a 4-output network on images
// idx, each at the four rotations, without augmentation.
func RotationAccuracy(ctx context.Context, n *model.Net, d *job.Data, idx []int) (float64, error) {
	acc, _, err := RotationAccuracyPerClass(ctx, n, d, idx)
	return acc, err
}

// RotationAccuracyPerClass is RotationAccuracy, also per class (by name;
// classes without images in idx are left out).
func RotationAccuracyPerClass(ctx context.Context, n *model.Net, d *job.Data, idx []int) (float64, map[string]float64, error) {
	ok, total := make([]int, len(d.Set.Classes)), make([]int, len(d.Set.Classes))
	if err := rotationCounts(ctx, n, d, idx, ok, total); err != nil {
		return 0, nil, err
	}
	var allOK, all int
	per := map[string]float64{}
	for c, t := range total {
		if t > 0 {
			per[d.Set.Classes[c]] = float64(ok[c]) / float64(t)
		}
		allOK, all = allOK+ok[c], all+t
	}
	if all == 0 {
		return 0, per, nil
	}
	return float64(allOK) / float64(all), per, nil
}

// rotationCounts adds to ok[c] and total[c] the correctly classified and
// all rotated samples of class c among images idx.
func rotationCounts(ctx context.Context, n *model.Net, d *job.Data, idx []int, ok, total []int) error {
	wasTraining := n.Training()
	n.SetTraining(false)
	defer n.SetTraining(wasTraining)
	var x []float32
	var labels []int
	return eachBatch(ctx, d, idx, evalBatch/shard.Rotations, func(set *shard.Dataset, at, part []int) error {
		x, labels = shard.RotationBatch(set, at, d.Norm, job.EvalAugment(n.Config().InputSize), nil, x, labels)
		logits, err := n.Forward(ctx, x, len(labels))
		if err != nil {
			return fmt.Errorf("rotation accuracy: %w", err)
		}
		for i, t := range labels {
			c := d.Set.Items[part[i%len(part)]].Class
			if argmax(logits[i*shard.Rotations:(i+1)*shard.Rotations]) == t {
				ok[c]++
			}
			total[c]++
		}
		return nil
	})
}

// argmax is the index of v's largest value (the first of equals).
func argmax[T float32 | float64](v []T) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
