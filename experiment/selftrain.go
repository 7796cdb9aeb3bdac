package experiment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// selfTrainStream is the PCG stream of the students' data order and
// augmentation (plus the round), the same for both arms' students.
const selfTrainStream = 0x73656c6674726e00

// ErrSelfTrainMissing is returned by FineTune when the job self-trains but
// the baseline result it is given does not carry the baseline arm's
// self-training (a result from before the stage was configured).
var ErrSelfTrainMissing = errors.New("self-training of the baseline missing")

// SelfTraining is both arms after the self-training stage.
type SelfTraining struct {
	Baseline SelfTrainResult `json:"baseline"`
	Finetune SelfTrainResult `json:"finetune"`
	// Gain is the fine-tuned arm's student minus the baseline arm's, test
	// accuracy in points of 0..1.
	Gain float64 `json:"gain"`
}

// selfTrain runs the self-training stage on one arm from its trained
// classifier and evaluates and saves (as ckName) the last student; nil
// when c.SelfTrain is off.
func (r *Runner) selfTrain(ctx context.Context, c job.Config, d *job.Data, teacher *model.Net, start Student,
	s job.SupervisedConfig, phase pb.Phase, ckName string) (*SelfTrainResult, error) {
	if !c.SelfTrain.On() {
		return nil, nil
	}
	t0 := time.Now()
	n, hist, rounds, err := SelfTrain(ctx, c, d, teacher, start, s, phase, r.Progress)
	if err != nil {
		return nil, err
	}
	res, err := r.evaluate(ctx, n, d, hist)
	if err != nil {
		return nil, fmt.Errorf("self-training: %w", err)
	}
	res.Seconds = time.Since(t0).Seconds()
	if res.Checkpoint, err = r.saveNet(ckName, n, d, d.Set.Classes); err != nil {
		return nil, fmt.Errorf("self-training: %w", err)
	}
	return &SelfTrainResult{Result: res, Rounds: rounds}, nil
}

// SelfTrainResult is one arm's self-training outcome (job.SelfTrainConfig):
// its last student's evaluation and each round's pseudo-labels.
type SelfTrainResult struct {
	Result ModelResult    `json:"result"`
	Rounds []PseudoLabels `json:"rounds"`
}

// PseudoLabels is one round's pseudo-labelling of the unlabeled training
// photos.
type PseudoLabels struct {
	// Candidates are the unlabeled training photos the teacher labeled.
	Candidates int `json:"candidates"`
	// Kept counts the photos kept, by the class the teacher gave them.
	Kept map[string]int `json:"kept"`
	// LeastConfidence is the teacher's lowest probability among them.
	LeastConfidence float64 `json:"least_confidence"`
	// Accuracy is the share of the kept photos whose pseudo-label is their
	// true class. Training never reads those labels; this is a diagnostic
	// of the teacher, and nothing is chosen by it.
	Accuracy float64 `json:"accuracy"`
	// StudentValidationAccuracy is the round's student's accuracy on the
	// held-out labeled images.
	StudentValidationAccuracy float64 `json:"student_validation_accuracy"`
}

// KeptTotal is the number of photos kept.
func (p PseudoLabels) KeptTotal() int {
	n := 0
	for _, v := range p.Kept {
		n += v
	}
	return n
}

// Student is where a self-training arm starts each student: it returns a
// new network and the number of leading feature blocks kept frozen while
// it trains.
type Student func() (n *model.Net, freeze int, err error)

// SelfTrain runs c.SelfTrain's rounds from teacher (an arm's trained
// classifier): the teacher pseudo-labels the unlabeled training photos, a
// student from start trains on them and the labeled training images with
// the recipe s over c.SelfTrain.Epochs, and becomes the next round's
// teacher. It returns the last student, its history and every round's
// pseudo-labels.
func SelfTrain(ctx context.Context, c job.Config, d *job.Data, teacher *model.Net, start Student, s job.SupervisedConfig,
	phase pb.Phase, progress func(Event)) (*model.Net, []job.EpochStat, []PseudoLabels, error) {
	st := c.SelfTrain
	var rounds []PseudoLabels
	var hist []job.EpochStat
	for r := range st.Rounds {
		probs, err := Probabilities(ctx, teacher, d, d.Split.Unlabeled)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("self-training round %d: pseudo-label: %w", r+1, err)
		}
		pseudo, pl := choosePseudo(d, d.Split.Unlabeled, probs, st.Keep, st.MinConfidence)
		student, freeze, err := start()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("self-training round %d: %w", r+1, err)
		}
		ex := Examples{IDs: append(append([]int(nil), d.LabeledTrain...), slices.Sorted(maps.Keys(pseudo))...), Pseudo: pseudo}
		if st.Soft {
			ex.Soft = softTargets(d.Split.Unlabeled, probs, pseudo, len(d.Set.Classes))
		}
		hist, err = SupervisedOn(ctx, student, d, ex, st.Student(s), freeze, c.Seed^selfTrainStream+uint64(r), phase, staged(progress, r))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("self-training round %d: %w", r+1, err)
		}
		if len(hist) > 0 {
			pl.StudentValidationAccuracy = hist[len(hist)-1].ValidationAccuracy
		}
		rounds = append(rounds, pl)
		teacher = student
	}
	return teacher, hist, rounds, nil
}

// staged marks progress events as round r's student's (nil stays nil).
func staged(progress func(Event), r int) func(Event) {
	if progress == nil {
		return nil
	}
	stage := fmt.Sprintf("self-training %d", r+1)
	return func(e Event) {
		e.Stage = stage
		progress(e)
	}
}

// Probabilities returns n's class probabilities for images idx, each the
// softmax averaged over the image and its horizontal mirror (row-major,
// len(idx) x classes).
func Probabilities(ctx context.Context, n *model.Net, d *job.Data, idx []int) ([]float64, error) {
	k, side := len(d.Set.Classes), n.Config().InputSize
	out := make([]float64, 0, len(idx)*k)
	err := evalClassBatches(ctx, n, d, idx, func(x []float32, labels []int) error {
		plain, err := n.Forward(ctx, x, len(labels))
		if err != nil {
			return err
		}
		plain = slices.Clone(plain[:len(labels)*k])
		for r := 0; r < len(x); r += side { // mirror every row of every plane
			slices.Reverse(x[r : r+side])
		}
		mirror, err := n.Forward(ctx, x, len(labels))
		if err != nil {
			return err
		}
		for i := range labels {
			a, b := softmax(plain[i*k:(i+1)*k]), softmax(mirror[i*k:(i+1)*k])
			for j := range a {
				out = append(out, (a[j]+b[j])/2)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("class probabilities: %w", err)
	}
	return out, nil
}

// softmax is the softmax of logits in float64.
func softmax(logits []float32) []float64 {
	m := float64(logits[argmax(logits)])
	p := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		p[i] = math.Exp(float64(v) - m)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// choosePseudo picks the pseudo-labels of images idx from their class
// probabilities: every class keeps at most keep x len(idx) / classes of
// the images predicted to be of it with at least minConf, the most
// confident first (ties by image id).
func choosePseudo(d *job.Data, idx []int, probs []float64, keep, minConf float64) (map[int]int, PseudoLabels) {
	k := len(d.Set.Classes)
	type cand struct {
		id   int
		conf float64
	}
	byClass := make([][]cand, k)
	for i, id := range idx {
		p := probs[i*k : (i+1)*k]
		c := argmax(p)
		if p[c] >= minConf {
			byClass[c] = append(byClass[c], cand{id, p[c]})
		}
	}
	quota := max(int(keep*float64(len(idx))/float64(k)), 1)
	pseudo := map[int]int{}
	pl := PseudoLabels{Candidates: len(idx), Kept: map[string]int{}, LeastConfidence: 1}
	right := 0
	for c, cs := range byClass {
		slices.SortFunc(cs, func(a, b cand) int {
			return cmp.Or(cmp.Compare(b.conf, a.conf), cmp.Compare(a.id, b.id))
		})
		for _, x := range cs[:min(quota, len(cs))] {
			pseudo[x.id] = c
			pl.LeastConfidence = min(pl.LeastConfidence, x.conf)
			if d.Set.Items[x.id].Class == c {
				right++
			}
		}
		pl.Kept[d.Set.Classes[c]] = min(quota, len(cs))
	}
	if len(pseudo) > 0 {
		pl.Accuracy = float64(right) / float64(len(pseudo))
	} else {
		pl.LeastConfidence = 0
	}
	return pseudo, pl
}

// softTargets are the probabilities of the pseudo-labeled images among idx
// (rows of probs, classes wide), by image id.
func softTargets(idx []int, probs []float64, pseudo map[int]int, classes int) map[int][]float32 {
	soft := make(map[int][]float32, len(pseudo))
	for i, id := range idx {
		if _, ok := pseudo[id]; !ok {
			continue
		}
		row := make([]float32, classes)
		for j := range row {
			row[j] = float32(probs[i*classes+j])
		}
		soft[id] = row
	}
	return soft
}
