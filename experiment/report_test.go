package experiment

import (
	"bytes"
	"encoding/json"
	"image/png"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/job"
)

// sampleReport is a small report with known numbers.
func sampleReport() Report {
	classes := []string{"daisy", "rose", "tulip"}
	base := Confusion{{8, 2, 0}, {3, 6, 1}, {0, 2, 8}}
	ft := Confusion{{9, 1, 0}, {1, 8, 1}, {0, 1, 9}}
	hist := []job.EpochStat{{Epoch: 1, Loss: 1.2, Accuracy: 0.4, ValidationAccuracy: 0.5}, {Epoch: 2, Loss: 0.8, Accuracy: 0.7, ValidationAccuracy: 0.6}}
	return Report{
		Dataset: DatasetInfo{Source: "embedded", Classes: classes, Train: 120, Test: 30, Labeled: 12, Validation: 2, Unlabeled: 108, ImageSize: 32},
		Baseline: ModelResult{TestAccuracy: base.Accuracy(), ValidationAccuracy: 0.5, PerClass: perClassMap(classes, base),
			Confusion: base, History: hist},
		Pretext: PretextResult{TestRotationAccuracy: 0.75, History: hist, PerClassRotation: map[string]float64{"rose": 0.7, "tulip": 0.8}},
		Finetune: ModelResult{TestAccuracy: ft.Accuracy(), ValidationAccuracy: 0.6, PerClass: perClassMap(classes, ft),
			Confusion: ft, History: hist},
		Gain: ft.Accuracy() - base.Accuracy(), Seed: 3, Preset: "quick", Model: "small",
		Cluster: ClusterInfo{Workers: 2, Coordinators: 1},
		Timing:  Timing{TotalSeconds: 100, PretrainSeconds: 60, PretrainSamplesPerSecond: 500},
		Config:  job.DefaultConfig(),
		Frozen: []FrozenResult{
			sampleFrozen(NetPretrained, 0.5, 0.6), sampleFrozen(NetBaseline, 0.45, 0.55), sampleFrozen(NetRandom, 0.3, 0.35),
		},
		Files: map[string]string{"probes": FileProbes},
	}
}

// sampleFrozen is a two-block frozen evaluation with the given test
// accuracies for block 1 (probe) and block 2 (probe); kNN 0.1 lower.
func sampleFrozen(name string, b1, b2 float64) FrozenResult {
	blk := func(i int, acc float64) BlockResult {
		return BlockResult{Block: i, Dim: 16 * i, Probe: &ProbeResult{TestAccuracy: acc, WeightDecay: 1e-2},
			KNN: &KNNResult{TestAccuracy: acc - 0.1, K: 20, Temperature: 0.07}}
	}
	return FrozenResult{Network: name, Blocks: []BlockResult{blk(1, b1), blk(2, b2)}}
}

func TestRenderMarkdown(t *testing.T) {
	md := RenderMarkdown(sampleReport())
	for _, want := range []string{
		"| supervised baseline (from scratch, labeled subset only) | 73.3% | 50.0% |",
		"| rotation-pretrained, fine-tuned on the same subset | 86.7% | 60.0% |",
		"**+13.3 points**",
		"ResNet-18 at 128 px", "72.5", "75.2", // the seed experiment's numbers
		"63.0 ± 3.6", // the PyTorch reference
		"| **this run** | 73.3 | 86.7 | +13.3 |",
		"| class | baseline | fine-tuned | gain | rotation (pretext) |",
		"| rose | 60.0% | 80.0% | +20.0 | 70.0% |",
		"| tulip | 0 | 1 | 9 |",
		"2 workers and 1 coordinator(s) on loopback",
		"| block (features) | probe: pretrained | probe: baseline | probe: random | kNN: pretrained | kNN: baseline | kNN: random |",
		"| 1 (16) | 50.0% | 45.0% | 30.0% | 40.0% | 35.0% | 20.0% |",
		"| 2 (32) | 60.0% | 55.0% | 35.0% | 50.0% | 45.0% | 25.0% |",
		"exp(similarity/0.07)", "`probes.png`",
		"The pretext saw 10 epochs of 32 images x 4 rotations per step at 32 px; augmentation before rotating: crop pad 4, flip.",
		"Both supervised runs use the same recipe: 40 epochs, batch 32, adam lr 0.001, cosine schedule, crop pad 4, flip. Fine-tuning re-initialised the last 1 feature block(s).",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

func TestReportJSONKeys(t *testing.T) {
	b, err := json.Marshal(sampleReport())
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
	delete(m["finetune"].(map[string]any), "confusion")
	if err := CheckReportKeys(m); err == nil || !strings.Contains(err.Error(), "finetune.confusion") {
		t.Errorf("CheckReportKeys without finetune.confusion = %v, want an error naming it", err)
	}
}

func TestPlots(t *testing.T) {
	r := sampleReport()
	for name, f := range map[string]func(Report) ([]byte, error){"curves": CurvesPNG, "confusion": ConfusionPNG, "probes": ProbesPNG} {
		b, err := f(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", name, err)
		}
		if img.Bounds().Dx() < 500 {
			t.Errorf("%s: image only %d px wide", name, img.Bounds().Dx())
		}
	}
	if _, err := ProbesPNG(Report{}); err == nil {
		t.Error("ProbesPNG without frozen evaluations: want an error")
	}
	r.Finetune.Confusion = Confusion{{1}}
	if _, err := ConfusionPNG(r); err == nil {
		t.Error("ConfusionPNG with a matrix of the wrong size: want an error")
	}
}

func TestFineTuneText(t *testing.T) {
	for _, tc := range []struct {
		s    job.SupervisedConfig
		want string
	}{
		{job.SupervisedConfig{}, ""},
		{job.SupervisedConfig{BodyLRScale: 1}, ""},
		{job.SupervisedConfig{FreezeBlocks: 2}, " Fine-tuning kept the first 2 frozen."},
		{job.SupervisedConfig{ReinitBlocks: 2, BodyLRScale: 0.5},
			" Fine-tuning re-initialised the last 2 feature block(s), trained the pretrained blocks at 0.5x the learning rate."},
	} {
		if got := fineTuneText(tc.s); got != tc.want {
			t.Errorf("fineTuneText(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestAugText(t *testing.T) {
	for _, tc := range []struct {
		a    job.AugmentConfig
		want string
	}{
		{job.AugmentConfig{}, "none"},
		{job.AugmentConfig{CropPad: 8}, "crop pad 8"},
		{job.AugmentConfig{Flip: true, CropScale: []float64{0.25, 1},
			ColorJitter: job.JitterConfig{Brightness: 0.4, Contrast: 0.3, Saturation: 0.2, Prob: 0.8}, Grayscale: 0.2},
			"random-resized crop of 0.25-1 of the area (aspect 0.75-1.33), flip, colour jitter 0.4/0.3/0.2 (brightness/contrast/saturation) with probability 0.8, grayscale with probability 0.2"},
		{job.AugmentConfig{CropScale: []float64{0.5, 0.9}, CropRatio: []float64{1, 1}}, "random-resized crop of 0.5-0.9 of the area (aspect 1.00-1.00)"},
	} {
		if got := augText(tc.a); got != tc.want {
			t.Errorf("augText(%+v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}

// TestPretextTextNamesTheCurriculum checks report.md's account of a
// resolution curriculum: each stage's side and epochs, then the training
// size's.
func TestPretextTextNamesTheCurriculum(t *testing.T) {
	c := job.DefaultConfig()
	c.Data.ImageSize, c.Pretrain.Epochs = 48, 10
	c.Pretrain.Curriculum = []job.CurriculumStage{{Until: 0.5, Scale: 0.5}, {Until: 0.7, Scale: 0.6667}}
	want := "10 epochs of 32 images x 4 rotations per step at 24 px (5 epochs), then 32 px (2 epochs), then 48 px (3 epochs);"
	if got := pretextText(c); !strings.Contains(got, want) {
		t.Errorf("pretext text %q lacks %q", got, want)
	}
	c.Model.PretextBlocks = 1
	if got, want := pretextText(c), "Its network had 1 feature block(s) beyond small's 3, dropped before fine-tuning"; !strings.Contains(got, want) {
		t.Errorf("pretext text %q lacks %q", got, want)
	}
}
