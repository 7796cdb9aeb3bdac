// Command tune compares fine-tuning and baseline recipes on the validation
// part of the labeled set (a tuning aid for the presets; not part of whorl).
//
//	go run ./experiment/testdata/tune -data DIR -seed 1 -variants '[{"lr":0.001},{"reinit_blocks":1}]'
//
// With -probes it scores the pretext instead (pretext recipes go in
// -patch): the per-block linear probes, cross-validated inside the labeled
// set, and kNN of the pretrained network and of a random one.
//
// With -folds K it scores each recipe by stratified K-fold cross-validation
// inside the labeled set instead (training and validation images pooled,
// every fold held out once; the test images are not touched), which is
// steadier than the 40-50 validation images of one split. Each line also
// gives the accuracy with the horizontal flip averaged in at test time.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/shard"
)

func main() {
	data := flag.String("data", "", "data folder (\"\" = embedded)")
	seed := flag.Uint64("seed", 1, "seed")
	preset := flag.String("preset", "quick", "base preset")
	patch := flag.String("patch", "{}", "JSON merged into the whole config first")
	variants := flag.String("variants", `[{}]`, "JSON list of supervised-config patches for fine-tuning")
	baselines := flag.String("baselines", `[{}]`, "JSON list of supervised-config patches for the baseline")
	folds := flag.Int("folds", 0, "K-fold cross-validation inside the labeled set (0 = the split's validation images)")
	probes := flag.Bool("probes", false, "score the pretext instead: per-block linear probes (eval.probe_folds-fold CV inside the labeled set) and kNN of the pretrained and a random network, one line each")
	selfTrain := flag.String("selftrain", "", "JSON list of self_train settings: run the runner's baseline and fine-tuning with each (the pretraining cached once), one line each with both arms with and without it")
	from := flag.String("pretrained", "", "pretrained checkpoint to fine-tune (a run's pretrained.safetensors of the same config; \"\" = pretrain here, cached in /tmp)")
	flag.Parse()
	c, err := job.Preset(*preset)
	check(err)
	check(json.Unmarshal([]byte(*patch), &c))
	c.Data.Dir, c.Seed = *data, *seed
	check(c.Validate())
	ctx := context.Background()
	t0 := time.Now()
	d, err := job.LoadData(ctx, c)
	check(err)
	log.Printf("loaded %d images in %v; train %d labeled %d val %d test %d", d.Set.Len(), time.Since(t0),
		len(d.Split.Train), len(d.LabeledTrain), len(d.Validation), len(d.Split.Test))
	var pre *model.Net
	if *from != "" {
		ck, err := model.ReadCheckpoint(*from)
		check(err)
		pre = ck.Net
	} else {
		pre = pretrained(ctx, c, d)
	}
	rot, perClass, err := experiment.RotationAccuracyPerClass(ctx, pre, d, d.Split.Test)
	check(err)
	byClass, err := json.Marshal(perClass)
	check(err)
	fmt.Printf(`{"seed":%d,"variant":"pretext","patch":%s,"rot_test":%.4f,"rot_test_class":%s}`+"\n", c.Seed, *patch, rot, byClass)
	if *probes {
		scoreFeatures(ctx, c, d, pre, *patch)
		return
	}
	if *selfTrain != "" && *folds > 0 {
		crossValidateSelfTraining(ctx, c, d, pre, *selfTrain, *folds)
		return
	}
	if *selfTrain != "" {
		scoreSelfTraining(ctx, c, pre, *selfTrain)
		return
	}
	run := func(phase pb.Phase, p string, from *model.Net) {
		s := c.Supervised
		check(json.Unmarshal([]byte(p), &s))
		cc := c
		cc.Supervised = s
		check(cc.Validate())
		t := time.Now()
		if *folds > 0 {
			cv, cvFlip := crossValidate(ctx, cc, d, from, phase, *folds)
			fmt.Printf(`{"seed":%d,"kind":%q,"patch":%s,"folds":%d,"cv":%.4f,"cv_flip":%.4f,"seconds":%.0f}`+"\n",
				c.Seed, phase.Label(), p, *folds, cv, cvFlip, time.Since(t).Seconds())
			return
		}
		n := train(ctx, cc, d, from, phase)
		val, valFlip := classify(ctx, n, d, d.Validation)
		test, err := experiment.Classify(ctx, n, d, d.Split.Test)
		check(err)
		fmt.Printf(`{"seed":%d,"kind":%q,"patch":%s,"val":%.4f,"val_flip":%.4f,"test":%.4f,"seconds":%.0f}`+"\n",
			c.Seed, phase.Label(), p, val, valFlip, test.Accuracy(), time.Since(t).Seconds())
	}
	var bs, vs []json.RawMessage
	check(json.Unmarshal([]byte(*baselines), &bs))
	check(json.Unmarshal([]byte(*variants), &vs))
	for _, b := range bs {
		run(pb.Phase_PHASE_BASELINE, string(b), nil)
	}
	for _, v := range vs {
		run(pb.Phase_PHASE_FINETUNING, string(v), pre)
	}
}

// scoreFeatures prints the frozen-feature evaluation of the pretrained
// network and of a random one (BatchNorm recalibrated), one line each:
// per block the probe's cross-validated and test accuracy and the kNN's
// test accuracy.
func scoreFeatures(ctx context.Context, c job.Config, d *job.Data, pre *model.Net, patch string) {
	e := c.Eval
	e.LinearProbes, e.KNN = true, true
	e.KNNK, e.KNNTemperature = job.DefaultKNNK, job.DefaultKNNTemperature
	if e.ProbeFolds == 0 {
		e.ProbeFolds = job.DefaultProbeFolds
	}
	random, err := model.New(pre.Config(), int64(c.Seed)+7000)
	check(err)
	check(experiment.RecalibrateBN(ctx, random, d))
	for _, net := range []struct {
		name string
		n    *model.Net
	}{{experiment.NetPretrained, pre}, {experiment.NetRandom, random}} {
		fr, err := experiment.EvaluateFrozen(ctx, net.name, net.n, d, e)
		check(err)
		var cv, test, knn []float64
		for _, b := range fr.Blocks {
			cv, test, knn = append(cv, b.Probe.ValidationAccuracy), append(test, b.Probe.TestAccuracy), append(knn, b.KNN.TestAccuracy)
		}
		line, err := json.Marshal(map[string]any{"seed": c.Seed, "preset": c.Preset, "data": c.Data.Dir, "network": net.name, "patch": json.RawMessage(patch),
			"probe_cv": cv, "probe_test": test, "knn_test": knn, "seconds": fr.Seconds})
		check(err)
		fmt.Println(string(line))
	}
}

// scoreSelfTraining runs the runner's baseline and fine-tuning of c with
// each self_train setting in list (frozen features off) from the
// pretrained network pre and prints one line per setting: both arms'
// validation and test accuracy with and without self-training, and the
// pseudo-labels of each round.
func scoreSelfTraining(ctx context.Context, c job.Config, pre *model.Net, list string) {
	settings := selfTrainSettings(list)
	ck, err := model.EncodeCheckpoint(pre, nil, nil)
	check(err)
	c.Eval = job.EvalConfig{}
	for _, st := range settings {
		cc := c
		cc.SelfTrain = st
		check(cc.Validate())
		t := time.Now()
		var r experiment.Runner
		cj := cc.JSON()
		_, err := r.Prepare(ctx, cj)
		check(err)
		base, err := r.Baseline(ctx, cj)
		check(err)
		b, err := r.FineTune(ctx, cj, ck, base, nil)
		check(err)
		var rep experiment.Report
		check(json.Unmarshal(b, &rep))
		line := map[string]any{"seed": c.Seed, "preset": c.Preset, "data": c.Data.Dir, "self_train": st,
			"baseline_val": rep.Baseline.ValidationAccuracy, "baseline_test": rep.Baseline.TestAccuracy,
			"finetune_val": rep.Finetune.ValidationAccuracy, "finetune_test": rep.Finetune.TestAccuracy,
			"seconds": time.Since(t).Seconds()}
		if s := rep.SelfTraining; s != nil {
			line["st_baseline_val"], line["st_baseline_test"] = s.Baseline.Result.ValidationAccuracy, s.Baseline.Result.TestAccuracy
			line["st_finetune_val"], line["st_finetune_test"] = s.Finetune.Result.ValidationAccuracy, s.Finetune.Result.TestAccuracy
			line["st_baseline_rounds"], line["st_finetune_rounds"] = s.Baseline.Rounds, s.Finetune.Rounds
		}
		out, err := json.Marshal(line)
		check(err)
		fmt.Println(string(out))
	}
}

// crossValidateSelfTraining scores each self_train setting in list by
// stratified k-fold cross-validation inside the labeled set: per fold, each
// arm's teacher trains on the other folds, pseudo-labels the unlabeled
// photos, and its student trains; teacher and student are scored on the
// held-out fold. One line per setting: both arms' CV accuracy without and
// with self-training (the teachers are trained once per fold).
func crossValidateSelfTraining(ctx context.Context, c job.Config, d *job.Data, pre *model.Net, list string, k int) {
	settings := selfTrainSettings(list)
	type arm struct {
		teachers []*model.Net
		ok       float64
		student  []float64
	}
	folds := d.LabeledFolds(k)
	data := make([]*job.Data, k)
	arms := map[string]*arm{"baseline": {student: make([]float64, len(settings))}, "finetune": {student: make([]float64, len(settings))}}
	total := 0.0
	for f := range k {
		dd := *d
		dd.LabeledTrain, dd.Validation = nil, nil
		for i, ids := range folds {
			if i == f {
				dd.Validation = ids
			} else {
				dd.LabeledTrain = append(dd.LabeledTrain, ids...)
			}
		}
		data[f] = &dd
		total += float64(len(dd.Validation))
		for name, a := range arms {
			var from *model.Net
			phase := pb.Phase_PHASE_BASELINE
			if name == "finetune" {
				from, phase = pre, pb.Phase_PHASE_FINETUNING
			}
			n := train(ctx, c, &dd, from, phase)
			a.teachers = append(a.teachers, n)
			acc, _ := classify(ctx, n, &dd, dd.Validation)
			a.ok += acc * float64(len(dd.Validation))
		}
	}
	for i, st := range settings {
		cc := c
		cc.SelfTrain = st
		check(cc.Validate())
		t := time.Now()
		for name, a := range arms {
			for f := range k {
				dd := data[f]
				start := func() (*model.Net, int, error) {
					if name == "baseline" {
						n, err := recipe.Net(cc, len(dd.Set.Classes), int64(cc.Seed)+1000)
						return n, 0, err
					}
					n := pre.Clone()
					n.ReplaceHead(len(dd.Set.Classes), int64(cc.Seed)+2000)
					return n, cc.Supervised.FreezeBlocks, experiment.ReinitBlocks(n, cc.Supervised.ReinitBlocks, int64(cc.Seed)+3000)
				}
				s := cc.Supervised
				if name == "baseline" {
					s.BodyLRScale = 1
				}
				n, _, _, err := experiment.SelfTrain(ctx, cc, dd, a.teachers[f], start, s, pb.Phase_PHASE_BASELINE, nil)
				check(err)
				acc, _ := classify(ctx, n, dd, dd.Validation)
				a.student[i] += acc * float64(len(dd.Validation))
			}
		}
		line, err := json.Marshal(map[string]any{"seed": c.Seed, "preset": c.Preset, "data": c.Data.Dir, "folds": k, "self_train": st,
			"cv_baseline": arms["baseline"].ok / total, "cv_baseline_self": arms["baseline"].student[i] / total,
			"cv_finetune": arms["finetune"].ok / total, "cv_finetune_self": arms["finetune"].student[i] / total,
			"seconds": time.Since(t).Seconds()})
		check(err)
		fmt.Println(string(line))
	}
}

// selfTrainSettings decodes -selftrain's list, refusing unknown keys (a
// misspelt or newer setting must not run as the default).
func selfTrainSettings(list string) []job.SelfTrainConfig {
	dec := json.NewDecoder(strings.NewReader(list))
	dec.DisallowUnknownFields()
	var settings []job.SelfTrainConfig
	check(dec.Decode(&settings))
	return settings
}

// pretrained pretrains (or loads the cached result for the same config:
// the settings after pretraining do not count).
func pretrained(ctx context.Context, c job.Config, d *job.Data) *model.Net {
	key := c
	key.SelfTrain, key.Supervised, key.Eval = job.SelfTrainConfig{}, job.SupervisedConfig{}, job.EvalConfig{}
	path := fmt.Sprintf("/tmp/whorl-tune-%s.safetensors", job.Digest(key)[:16])
	if ck, err := model.ReadCheckpoint(path); err == nil {
		return ck.Net
	}
	st, err := experiment.NewPretrainState(c, len(d.Set.Classes))
	check(err)
	t := time.Now()
	check(experiment.Pretrain(ctx, c, d, st, nil, func(e experiment.Event) {
		if e.EpochDone {
			log.Printf("pretrain epoch %d loss %.3f acc %.3f (%v)", e.Epoch, e.Loss, e.Accuracy, time.Since(t).Round(time.Second))
		}
	}))
	check(model.SaveCheckpoint(path, st.Net, nil, nil))
	return st.Net
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// train builds the network of one supervised run (from scratch for the
// baseline, from the pretrained one for fine-tuning) and trains it on
// d.LabeledTrain with c.Supervised.
func train(ctx context.Context, c job.Config, d *job.Data, from *model.Net, phase pb.Phase) *model.Net {
	s := c.Supervised
	var n *model.Net
	var err error
	if from == nil {
		n, err = recipe.Net(c, len(d.Set.Classes), int64(c.Seed)+1000)
		check(err)
	} else {
		n = from.Clone()
		n.ReplaceHead(len(d.Set.Classes), int64(c.Seed)+2000)
		check(experiment.ReinitBlocks(n, s.ReinitBlocks, int64(c.Seed)+3000))
	}
	_, err = experiment.Supervised(ctx, n, d, s, s.FreezeBlocks, c.Seed^0x7375706572766973, phase, nil)
	check(err)
	return n
}

// crossValidate trains one run per fold of the labeled images (training
// and validation pooled, stratified by class) and returns the accuracy over
// all held-out images, plain and with the flip averaged in.
func crossValidate(ctx context.Context, c job.Config, d *job.Data, from *model.Net, phase pb.Phase, k int) (float64, float64) {
	fold := d.LabeledFolds(k)
	var ok, okFlip, total float64
	for f := range k {
		dd := *d
		dd.LabeledTrain, dd.Validation = nil, nil
		for i, ids := range fold {
			if i == f {
				dd.Validation = ids
			} else {
				dd.LabeledTrain = append(dd.LabeledTrain, ids...)
			}
		}
		n := train(ctx, c, &dd, from, phase)
		a, b := classify(ctx, n, &dd, dd.Validation)
		w := float64(len(dd.Validation))
		ok, okFlip, total = ok+a*w, okFlip+b*w, total+w
	}
	return ok / total, okFlip / total
}

// classify is the accuracy of n on images idx, plain and with each image's
// logits averaged with those of its horizontal mirror.
func classify(ctx context.Context, n *model.Net, d *job.Data, idx []int) (float64, float64) {
	if len(idx) == 0 {
		return 0, 0
	}
	n.SetTraining(false)
	defer n.SetTraining(true)
	k, s := len(d.Set.Classes), n.Config().InputSize
	var x []float32
	var labels []int
	ok, okFlip := 0, 0
	for a := 0; a < len(idx); a += 128 {
		x, labels = shard.ClassBatch(d.Set, idx[a:min(a+128, len(idx))], d.Norm, job.EvalAugment(s), nil, x, labels)
		out, err := n.Forward(ctx, x, len(labels))
		check(err)
		plain := slices.Clone(out[:len(labels)*k])
		for r := 0; r < len(x); r += s {
			slices.Reverse(x[r : r+s])
		}
		out, err = n.Forward(ctx, x, len(labels))
		check(err)
		for i, t := range labels {
			p, m := plain[i*k:(i+1)*k], out[i*k:(i+1)*k]
			avg := make([]float32, k)
			for j := range avg {
				avg[j] = p[j] + m[j]
			}
			if argmax(p) == t {
				ok++
			}
			if argmax(avg) == t {
				okFlip++
			}
		}
	}
	return float64(ok) / float64(len(idx)), float64(okFlip) / float64(len(idx))
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
