package experiment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	"github.com/whorl-ml/whorl/shard"
)

// pseudoData is a job.Data of 3 classes and 12 images whose classes are
// image id mod 3: only the items and class names matter to choosePseudo.
func pseudoData() *job.Data {
	set := &shard.Dataset{Classes: []string{"a", "b", "c"}}
	for i := range 12 {
		set.Items = append(set.Items, shard.Item{Class: i % 3})
	}
	return &job.Data{Set: set}
}

func TestChoosePseudoKeepsTheMostConfidentPerClass(t *testing.T) {
	d := pseudoData()
	idx := []int{0, 1, 2, 3, 4, 5}
	// rows: image 0..5; predicted class and confidence
	probs := []float64{
		0.9, 0.05, 0.05, // 0: a 0.9 (right)
		0.8, 0.1, 0.1, // 1: a 0.8 (wrong: class b)
		0.7, 0.2, 0.1, // 2: a 0.7, over the quota
		0.1, 0.3, 0.6, // 3: c 0.6 (wrong: class a)
		0.2, 0.6, 0.2, // 4: b 0.6 (right)
		0.3, 0.3, 0.4, // 5: c 0.4, under min confidence
	}
	// keep 1: quota 6/3 = 2 per class.
	pseudo, pl := choosePseudo(d, idx, probs, 1, 0.5)
	want := map[int]int{0: 0, 1: 0, 3: 2, 4: 1}
	if len(pseudo) != len(want) {
		t.Fatalf("pseudo-labels %v, want %v", pseudo, want)
	}
	for id, c := range want {
		if pseudo[id] != c {
			t.Errorf("image %d labeled %d, want %d (all: %v)", id, pseudo[id], c, pseudo)
		}
	}
	if pl.Candidates != 6 || pl.KeptTotal() != 4 || pl.Kept["a"] != 2 || pl.Kept["b"] != 1 || pl.Kept["c"] != 1 {
		t.Errorf("counts %+v", pl)
	}
	if pl.Accuracy != 0.5 || pl.LeastConfidence != 0.6 {
		t.Errorf("accuracy %v least confidence %v, want 0.5 and 0.6", pl.Accuracy, pl.LeastConfidence)
	}
	// keep 0.5: quota 1 per class, the most confident of each.
	pseudo, _ = choosePseudo(d, idx, probs, 0.5, 0.5)
	if len(pseudo) != 3 || pseudo[0] != 0 || pseudo[4] != 1 || pseudo[3] != 2 {
		t.Errorf("keep 0.5: %v", pseudo)
	}
	// Ties go to the lower image id.
	tie := []float64{0.9, 0.05, 0.05, 0.9, 0.05, 0.05}
	pseudo, _ = choosePseudo(d, []int{7, 2}, tie, 0.5, 0)
	if _, ok := pseudo[2]; !ok || len(pseudo) != 1 {
		t.Errorf("tie: %v, want image 2 only", pseudo)
	}
	// Nothing confident enough: nothing kept, no confidence to report.
	pseudo, pl = choosePseudo(d, idx, probs, 1, 0.95)
	if len(pseudo) != 0 || pl.LeastConfidence != 0 || pl.Accuracy != 0 {
		t.Errorf("min confidence 0.95: %v %+v", pseudo, pl)
	}
}

func TestProbabilitiesAverageTheImageAndItsMirror(t *testing.T) {
	c := tinyConfig(writeImageFolder(t, 3, 16))
	d, err := job.LoadData(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	n, err := recipe.Net(c, 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Probabilities(context.Background(), n, d, d.Split.Unlabeled)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3*len(d.Split.Unlabeled) {
		t.Fatalf("%d probabilities for %d images", len(p), len(d.Split.Unlabeled))
	}
	for i := 0; i < len(p); i += 3 {
		if s := p[i] + p[i+1] + p[i+2]; s < 0.999999 || s > 1.000001 {
			t.Fatalf("image %d: probabilities sum to %v", i/3, s)
		}
	}
	// The first image by hand: its mirror made by indexing, not by the
	// row reversal Probabilities uses.
	n.SetTraining(false)
	x, _ := shard.ClassBatch(d.Set, d.Split.Unlabeled[:1], d.Norm, job.EvalAugment(8), nil, nil, nil)
	m := make([]float32, len(x))
	for ch := range 3 {
		for y := range 8 {
			for col := range 8 {
				m[ch*64+y*8+col] = x[ch*64+y*8+7-col]
			}
		}
	}
	a, err := n.Forward(context.Background(), x, 1)
	if err != nil {
		t.Fatal(err)
	}
	pa := softmax(slices.Clone(a[:3]))
	b, err := n.Forward(context.Background(), m, 1)
	if err != nil {
		t.Fatal(err)
	}
	pb := softmax(b[:3])
	for j := range 3 {
		if want := (pa[j] + pb[j]) / 2; p[j] < want-1e-6 || p[j] > want+1e-6 {
			t.Errorf("class %d: probability %v, want %v", j, p[j], want)
		}
	}
}

func TestRunLocalSelfTrainsBothArms(t *testing.T) {
	dir := writeImageFolder(t, 3, 16)
	for _, soft := range []bool{false, true} {
		t.Run(fmt.Sprintf("soft=%v", soft), func(t *testing.T) { testSelfTrainsBothArms(t, dir, soft) })
	}
}

func testSelfTrainsBothArms(t *testing.T, dir string, soft bool) {
	c := tinyConfig(dir)
	c.Eval = job.EvalConfig{}
	c.SelfTrain = job.SelfTrainConfig{Rounds: 2, Keep: 1, MinConfidence: 0, Epochs: 2, Soft: soft}
	out := t.TempDir()
	stages := map[string]int{} // epochs done by phase and stage
	r := &Runner{OutDir: out, Progress: func(e Event) {
		if e.EpochDone {
			stages[e.Phase.Label()+"/"+e.Stage]++
		}
	}}
	rep, err := r.RunLocal(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"baseline/self-training 1", "baseline/self-training 2", "fine-tuning/self-training 2"} {
		if stages[k] != 2 {
			t.Errorf("%d epochs reported as %q, want 2 (all: %v)", stages[k], k, stages)
		}
	}
	s := rep.SelfTraining
	if s == nil {
		t.Fatal("report has no self-training")
	}
	if want := s.Baseline.Result.Seconds + s.Finetune.Result.Seconds; rep.Timing.SelfTrainSeconds != want || want <= 0 {
		t.Errorf("self-training seconds %v, want the students' %v", rep.Timing.SelfTrainSeconds, want)
	}
	if s.Gain != s.Finetune.Result.TestAccuracy-s.Baseline.Result.TestAccuracy {
		t.Errorf("self-trained gain %v inconsistent", s.Gain)
	}
	unlabeled := rep.Dataset.Unlabeled
	for arm, st := range map[string]SelfTrainResult{"baseline": s.Baseline, "finetune": s.Finetune} {
		if len(st.Rounds) != 2 || len(st.Result.History) != 2 || st.Result.Confusion.Total() != rep.Dataset.Test {
			t.Errorf("%s: %d rounds, %d epochs, %d test images", arm, len(st.Rounds), len(st.Result.History), st.Result.Confusion.Total())
		}
		for i, pl := range st.Rounds {
			// keep 1 and no threshold: each class keeps up to a third of
			// the unlabeled photos; at least one is kept in all.
			if pl.Candidates != unlabeled || pl.KeptTotal() == 0 || pl.KeptTotal() > unlabeled {
				t.Errorf("%s round %d: %+v (unlabeled %d)", arm, i+1, pl, unlabeled)
			}
		}
	}
	for _, f := range []string{FileBaselineSelfCk, FileFinetunedSelfCk} {
		ck, err := model.ReadCheckpoint(filepath.Join(out, f))
		if err != nil || ck.Net.Config().Classes != 3 {
			t.Fatalf("%s: %v", f, err)
		}
		checkPredictMeta(t, ck.Meta, 3)
	}
	if rep.Files["baseline_selftrained"] != FileBaselineSelfCk {
		t.Errorf("files %v", rep.Files)
	}
	md, err := os.ReadFile(filepath.Join(out, FileReportMD))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "## Self-training") || !strings.Contains(string(md), "pseudo-labels") ||
		!strings.Contains(string(md), "| self-training (both arms) |") {
		t.Errorf("report.md lacks the self-training section:\n%s", md)
	}
}

// TestOneHotSoftTargetsTrainLikeLabels trains the same network twice, once
// on labels and once on one-hot target rows for half the images (the soft
// path): the weights must agree to float rounding.
func TestOneHotSoftTargetsTrainLikeLabels(t *testing.T) {
	c := tinyConfig(writeImageFolder(t, 3, 16))
	d, err := job.LoadData(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	soft, wrong := map[int][]float32{}, map[int][]float32{}
	for i, id := range d.LabeledTrain {
		if i%2 == 0 {
			row, other := make([]float32, 3), make([]float32, 3)
			row[d.Set.Items[id].Class], other[(d.Set.Items[id].Class+1)%3] = 1, 1
			soft[id], wrong[id] = row, other
		}
	}
	var weights [3][]float32
	for i, ex := range []Examples{{IDs: d.LabeledTrain}, {IDs: d.LabeledTrain, Soft: soft}, {IDs: d.LabeledTrain, Soft: wrong}} {
		n, err := recipe.Net(c, 3, 9)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := SupervisedOn(context.Background(), n, d, ex, c.Supervised, 0, 1, 0, nil); err != nil {
			t.Fatal(err)
		}
		weights[i] = n.Params()
	}
	for j := range weights[0] {
		if d := weights[0][j] - weights[1][j]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("parameter %d: labels %v, one-hot targets %v", j, weights[0][j], weights[1][j])
		}
	}
	// Targets of other classes must change the weights: the rows are read.
	var most float32
	for j := range weights[0] {
		most = max(most, weights[0][j]-weights[2][j], weights[2][j]-weights[0][j])
	}
	if most < 1e-3 {
		t.Errorf("targets of other classes moved no parameter by more than %v: the targets are not read", most)
	}
}

func TestSoftTargetsAreTheKeptRows(t *testing.T) {
	probs := []float64{0.5, 0.5, 0.9, 0.1, 0.2, 0.8}
	got := softTargets([]int{10, 11, 12}, probs, map[int]int{11: 0, 12: 1}, 2)
	if len(got) != 2 || got[11][0] != 0.9 || got[11][1] != float32(0.1) || got[12][1] != 0.8 {
		t.Errorf("soft targets %v", got)
	}
}

func TestFineTuneRefusesABaselineWithoutSelfTraining(t *testing.T) {
	c := tinyConfig(writeImageFolder(t, 3, 16))
	c.Eval = job.EvalConfig{}
	ctx := context.Background()
	var r Runner
	if _, err := r.Prepare(ctx, c.JSON()); err != nil {
		t.Fatal(err)
	}
	base, err := r.Baseline(ctx, c.JSON()) // without self-training
	if err != nil {
		t.Fatal(err)
	}
	c.SelfTrain = job.SelfTrainConfig{Rounds: 1, Keep: 1, Epochs: 1}
	if _, err := r.FineTune(ctx, c.JSON(), nil, base, nil); !errors.Is(err, ErrSelfTrainMissing) {
		t.Fatalf("err = %v, want ErrSelfTrainMissing", err)
	}
}
