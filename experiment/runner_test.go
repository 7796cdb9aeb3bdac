package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
)

// writeImageFolder makes a small image folder: classes sub-folders of n
// PNGs whose colour and stripes depend on the class, with noise.
func writeImageFolder(t *testing.T, classes, n int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	for c := range classes {
		sub := filepath.Join(dir, fmt.Sprintf("class%d", c))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			img := image.NewRGBA(image.Rect(0, 0, 12, 12))
			for y := range 12 {
				for x := range 12 {
					v := uint8(rng.IntN(60))
					if (x+c*y)%(c+2) == 0 {
						v += 150
					}
					img.Set(x, y, color.RGBA{R: v + uint8(40*c), G: v, B: 255 - v, A: 255})
				}
			}
			f, err := os.Create(filepath.Join(sub, fmt.Sprintf("%02d.png", i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := png.Encode(f, img); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	return dir
}

// tinyConfig is a configuration small enough for tests under -race.
func tinyConfig(dir string) job.Config {
	c := job.DefaultConfig()
	c.Data = job.DataConfig{Dir: dir, ImageSize: 8}
	c.Split = job.SplitConfig{TestFraction: 0.25, LabeledFraction: 0.5, ValidationFraction: 0.2}
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch = 2, 8
	c.Supervised.Epochs, c.Supervised.Batch = 2, 8
	c.CheckpointEvery = 2
	return c
}

func TestRunLocalWritesReport(t *testing.T) {
	c := tinyConfig(writeImageFolder(t, 3, 16))
	out := t.TempDir()
	r := &Runner{OutDir: out, Cluster: ClusterInfo{Workers: 1}}
	rep, err := r.RunLocal(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if err := CheckReportKeys(m); err != nil {
		t.Error(err)
	}
	for _, f := range []string{FileReportMD, FileCurves, FileConfusion, FileProbes, FileManifest, FilePretrained, FileFinetuned, FileBaselineCk} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("output %s missing or empty: %v", f, err)
		}
	}
	if rep.Dataset.Train+rep.Dataset.Test != 48 || rep.Dataset.Labeled+rep.Dataset.Unlabeled != rep.Dataset.Train {
		t.Errorf("dataset sizes do not add up: %+v", rep.Dataset)
	}
	if got := rep.Finetune.Confusion.Total(); got != rep.Dataset.Test {
		t.Errorf("fine-tuned confusion matrix counts %d images, test has %d", got, rep.Dataset.Test)
	}
	if rep.Gain != rep.Finetune.TestAccuracy-rep.Baseline.TestAccuracy || len(rep.Pretext.History) != 2 {
		t.Errorf("gain %v or pretext history %v inconsistent", rep.Gain, rep.Pretext.History)
	}
	ck, err := model.ReadCheckpoint(filepath.Join(out, FileFinetuned))
	if err != nil || ck.Net.Config().Classes != 3 {
		t.Fatalf("fine-tuned checkpoint: %v (classes %v)", err, ck)
	}
	checkPredictMeta(t, ck.Meta, 3)
	pre, err := model.ReadCheckpoint(filepath.Join(out, FilePretrained))
	if err != nil {
		t.Fatal(err)
	}
	checkPredictMeta(t, pre.Meta, 4)
	checkFrozen(t, rep, c.Model.Blocks())
	files, err := r.ResultFiles(c.JSON(), b)
	want := []string{FileBaseline, FileBaselineCk, FileConfig, FileConfusion, FileCurves, FileFinetuned, FileManifest,
		FilePretrained, FileProbes, FileReport, FileReportMD}
	if got := slices.Sorted(maps.Keys(files)); err != nil || !slices.Equal(got, want) {
		t.Errorf("result files %v, %v; want %v (not %s)", got, err, want, FileResume)
	}
}

// checkFrozen checks the frozen-feature evaluations of a report: the three
// networks in order, every block probed and kNN-classified with accuracies
// in [0, 1] and a penalty of the grid.
func checkFrozen(t *testing.T, rep Report, blocks int) {
	t.Helper()
	if len(rep.Frozen) != 3 {
		t.Fatalf("%d frozen evaluations, want 3", len(rep.Frozen))
	}
	for i, name := range []string{NetPretrained, NetBaseline, NetRandom} {
		f := rep.Frozen[i]
		if f.Network != name || len(f.Blocks) != blocks {
			t.Errorf("frozen[%d] is %q with %d blocks, want %q with %d", i, f.Network, len(f.Blocks), name, blocks)
			continue
		}
		for _, b := range f.Blocks {
			if b.Probe == nil || b.KNN == nil || b.Dim < 1 || !slices.Contains(probeWeightDecays, b.Probe.WeightDecay) ||
				b.Probe.TestAccuracy < 0 || b.Probe.TestAccuracy > 1 || b.KNN.TestAccuracy < 0 || b.KNN.TestAccuracy > 1 ||
				b.KNN.K != min(job.DefaultKNNK, rep.Dataset.Labeled-rep.Dataset.Validation) {
				t.Errorf("%s block %d: %+v (probe %+v, kNN %+v)", name, b.Block, b, b.Probe, b.KNN)
			}
		}
	}
}

// TestFrozenEvaluationsOff checks a configuration without evaluations
// reports none and draws no probes.png.
func TestFrozenEvaluationsOff(t *testing.T) {
	c := tinyConfig(writeImageFolder(t, 3, 16))
	c.Eval = job.EvalConfig{}
	out := t.TempDir()
	rep, err := (&Runner{OutDir: out}).RunLocal(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Frozen) != 0 || rep.Files["probes"] != "" {
		t.Errorf("evaluations off: frozen %v, files %v", rep.Frozen, rep.Files)
	}
	if _, err := os.Stat(filepath.Join(out, FileProbes)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("probes.png with evaluations off: %v", err)
	}
}

// checkPredictMeta checks that a checkpoint carries what `whorl predict`
// needs: a 3-channel normaliser with positive deviations and one name per
// output.
func checkPredictMeta(t *testing.T, meta map[string]string, outputs int) {
	t.Helper()
	var mean, std []float32
	var names []string
	if json.Unmarshal([]byte(meta[job.MetaNormMean]), &mean) != nil || len(mean) != 3 ||
		json.Unmarshal([]byte(meta[job.MetaNormStd]), &std) != nil || len(std) != 3 {
		t.Fatalf("checkpoint normaliser missing or malformed: mean %q std %q",
			meta[job.MetaNormMean], meta[job.MetaNormStd])
	}
	for _, s := range std {
		if s <= 0 {
			t.Errorf("normaliser std %v has a non-positive entry", std)
		}
	}
	if json.Unmarshal([]byte(meta[job.MetaClassNames]), &names) != nil || len(names) != outputs {
		t.Errorf("checkpoint label names %q: want %d", meta[job.MetaClassNames], outputs)
	}
}

// TestPretrainResumeIsExact interrupts pretraining and resumes it from the
// checkpoint: the weights must equal an uninterrupted run's bit for bit.
func TestPretrainResumeIsExact(t *testing.T) {
	dir := writeImageFolder(t, 3, 16)
	for _, opt := range []string{job.OptimizerSGD, job.OptimizerAdam} {
		t.Run(opt, func(t *testing.T) {
			c := tinyConfig(dir)
			c.Pretrain.Optimizer = opt
			if opt == job.OptimizerAdam {
				c.Pretrain.LR, c.Pretrain.Momentum, c.Pretrain.Nesterov = 1e-3, 0, false
			}
			testPretrainResume(t, c)
		})
	}
	t.Run("joint", func(t *testing.T) {
		c := tinyConfig(dir)
		c.Mode, c.Joint = job.ModeJoint, job.JointConfig{Weight: 1, LabeledBatch: 4}
		testPretrainResume(t, c)
	})
}

func testPretrainResume(t *testing.T, c job.Config) {
	ctx := context.Background()
	d, err := job.LoadData(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := NewPretrainState(c, len(d.Set.Classes))
	if err != nil {
		t.Fatal(err)
	}
	if err := Pretrain(ctx, c, d, whole, nil, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "resume.safetensors")
	save := func(s *PretrainState) error { return SavePretrain(path, c, s) }
	part, err := NewPretrainState(c, len(d.Set.Classes))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	steps := 0
	err = Pretrain(cctx, c, d, part, save, func(e Event) {
		if steps++; steps == 3 && !e.EpochDone {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pretraining returned %v, want context.Canceled", err)
	}
	resumed, err := ResumePretrain(path, c, len(d.Set.Classes))
	if err != nil || resumed == nil {
		t.Fatalf("resume: %v", err)
	}
	if resumed.Epoch != 0 || resumed.Step != 3 {
		t.Errorf("resumed at epoch %d step %d, want 0, 3", resumed.Epoch, resumed.Step)
	}
	if err := Pretrain(ctx, c, d, resumed, save, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(whole.Net.Params(), resumed.Net.Params()) || !slices.Equal(whole.Net.State(), resumed.Net.State()) {
		t.Error("resumed pretraining differs from the uninterrupted run")
	}
	other := c
	other.Seed++
	if _, err := ResumePretrain(path, other, len(d.Set.Classes)); err == nil {
		t.Error("resuming a checkpoint of another seed: want an error")
	}
}

// TestRunLocalJoint runs the joint mode's seven steps: the pretrained
// checkpoint is the rotation head's network (rotnet.py's 4 outputs), the
// evaluated classifier is the jointly trained class head (fine-tuned for
// joint.finetune_epochs when set), the pretext history carries the labeled
// images' accuracy, and the report names the mode.
func TestRunLocalJoint(t *testing.T) {
	dir := writeImageFolder(t, 3, 16)
	for _, ft := range []int{0, 1} {
		t.Run(fmt.Sprintf("finetune_epochs=%d", ft), func(t *testing.T) {
			c := tinyConfig(dir)
			c.Mode, c.Joint = job.ModeJoint, job.JointConfig{Weight: 1, LabeledBatch: 4, FinetuneEpochs: ft}
			out := t.TempDir()
			rep, err := (&Runner{OutDir: out}).RunLocal(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Finetune.History) != ft {
				t.Errorf("classifier history has %d epochs, want joint.finetune_epochs %d", len(rep.Finetune.History), ft)
			}
			if h := rep.Pretext.History; len(h) != 2 || h[1].ClassAccuracy <= 0 || h[1].ClassLoss <= 0 {
				t.Errorf("pretext history %+v: want 2 epochs with the labeled images' loss and accuracy", h)
			}
			for file, classes := range map[string]int{FilePretrained: 4, FileFinetuned: 3} {
				ck, err := model.ReadCheckpoint(filepath.Join(out, file))
				if err != nil || ck.Net.Config().Classes != classes {
					t.Fatalf("%s: %v (want %d outputs)", file, err, classes)
				}
			}
			md, err := os.ReadFile(filepath.Join(out, FileReportMD))
			if err != nil || !strings.Contains(string(md), "trained jointly") {
				t.Errorf("report.md does not name the joint mode: %v", err)
			}
			checkFrozen(t, rep, c.Model.Blocks())
		})
	}
}

// TestRunLocalPretextBlocks pretrains with an extra block
// (model.pretext_blocks): the pretrained checkpoint has it (rotnet.py's
// layout with 4 blocks), fine-tuning and the frozen-feature evaluations
// take the model's 3 blocks of it, so the fine-tuned checkpoint is a plain
// `small` whose first blocks start from the pretext network's.
func TestRunLocalPretextBlocks(t *testing.T) {
	c := tinyConfig(writeImageFolder(t, 3, 16))
	c.Model.PretextBlocks = 1
	c.Supervised.ReinitBlocks = 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	rep, err := (&Runner{OutDir: out}).RunLocal(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	pre, err := model.ReadCheckpoint(filepath.Join(out, FilePretrained))
	if err != nil {
		t.Fatal(err)
	}
	ft, err := model.ReadCheckpoint(filepath.Join(out, FileFinetuned))
	if err != nil {
		t.Fatal(err)
	}
	if pre.Net.NumBlocks() != 4 || ft.Net.NumBlocks() != 3 {
		t.Fatalf("pretrained %d blocks, fine-tuned %d; want 4 and 3", pre.Net.NumBlocks(), ft.Net.NumBlocks())
	}
	if !slices.ContainsFunc(pre.Net.Specs(), func(s model.TensorSpec) bool { return strings.HasPrefix(s.Name, "features.3.") }) {
		t.Error("the pretrained checkpoint lacks features.3 (the pretext block)")
	}
	checkFrozen(t, rep, c.Model.Blocks())
}
