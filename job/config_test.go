package job

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPresetsValidate(t *testing.T) {
	for _, name := range Presets() {
		c, err := Preset(name)
		if err != nil {
			t.Fatalf("Preset(%q): %v", name, err)
		}
		if name == PresetSeed || name == PresetFlowers || name == PresetFlowers96 { // 128, 64 and 96 px: photos larger than the embedded ones
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "data.dir") {
				t.Errorf("Preset(seed) on the embedded photos: %v, want a refusal naming data.dir", err)
			}
			c.Data.Dir = "photos"
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Preset(%q) does not validate: %v", name, err)
		}
		back, err := Parse(c.JSON())
		if err != nil {
			t.Fatalf("round trip of %q: %v", name, err)
		}
		if string(back.JSON()) != string(c.JSON()) {
			t.Errorf("round trip of %q changed the config:\n%s\n%s", name, c.JSON(), back.JSON())
		}
	}
	if _, err := Preset("huge"); err == nil || !strings.Contains(err.Error(), "quick, quick48, flowers, flowers96, paper, seed") {
		t.Errorf("Preset(huge) = %v, want an error listing the presets", err)
	}
	if DefaultConfig().Preset != PresetQuick {
		t.Errorf("DefaultConfig is preset %q, want quick", DefaultConfig().Preset)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Config)
		errHas []string // empty: valid
	}{
		{name: "default", edit: func(*Config) {}},
		{name: "embedded data", edit: func(c *Config) { c.Data.Dir = "" }},
		{name: "no pretraining", edit: func(c *Config) { c.Pretrain.Epochs = 0; c.Pretrain.Schedule.Kind = ScheduleConstant }},
		{name: "image size small", edit: func(c *Config) { c.Data.ImageSize = 4 }, errHas: []string{"data.image_size", "8..512"}},
		{name: "test fraction 1", edit: func(c *Config) { c.Split.TestFraction = 1 }, errHas: []string{"split.test_fraction", "(0, 1)"}},
		{name: "test per class", edit: func(c *Config) { c.Split.TestPerClass = 60 }},
		{name: "test per class negative", edit: func(c *Config) { c.Split.TestPerClass = -1 }, errHas: []string{"split.test_per_class", "0..1000000"}},
		{name: "labeled fraction 0", edit: func(c *Config) { c.Split.LabeledFraction = 0 }, errHas: []string{"split.labeled_fraction"}},
		{name: "validation 1", edit: func(c *Config) { c.Split.ValidationFraction = 1 }, errHas: []string{"split.validation_fraction", "[0, 1)"}},
		{name: "model", edit: func(c *Config) { c.Model.Name = "resnet" }, errHas: []string{"model.name", "small, nin3, nin4"}},
		{name: "resnet18 at 48 on the embedded set", edit: func(c *Config) { c.Model.Name, c.Data.ImageSize = ModelResNet18, 48 }},
		{name: "resnet50 small stem at 128 on a folder", edit: func(c *Config) {
			c.Model, c.Data = ModelConfig{Name: ModelResNet50, Stem: StemSmall, ZeroInitResidual: true}, DataConfig{Dir: "photos", ImageSize: 128}
		}},
		{name: "resnet below 32", edit: func(c *Config) { c.Model.Name, c.Data.ImageSize = ModelResNet18, 16 }, errHas: []string{"data.image_size = 16", "32..224 for resnet18"}},
		{name: "resnet above 224", edit: func(c *Config) { c.Model.Name, c.Data = ModelResNet34, DataConfig{Dir: "photos", ImageSize: 256} },
			errHas: []string{"data.image_size = 256", "32..224 for resnet34"}},
		{name: "resnet stem", edit: func(c *Config) { c.Model = ModelConfig{Name: ModelResNet18, Stem: "cifar"}; c.Data.ImageSize = 32 },
			errHas: []string{"model.stem", "imagenet, small"}},
		{name: "stem of a non-resnet", edit: func(c *Config) { c.Model.Stem = StemSmall }, errHas: []string{"model.stem", "only the ResNets"}},
		{name: "embedded above its size", edit: func(c *Config) { c.Data = DataConfig{ImageSize: 64} },
			errHas: []string{"data.image_size = 64", "stored at 48 px", "data.dir"}},
		{name: "freeze resnet", edit: func(c *Config) { c.Model.Name, c.Data.ImageSize, c.Supervised.FreezeBlocks = ModelResNet18, 32, 6 },
			errHas: []string{"supervised.freeze_blocks", "0..5"}},
		{name: "store size", edit: func(c *Config) { c.Data.StoreSize = 48 }},
		{name: "store below image size", edit: func(c *Config) { c.Data.StoreSize = 16 }, errHas: []string{"data.store_size = 16", "32..512"}},
		{name: "embedded store above its size", edit: func(c *Config) { c.Data.StoreSize = 64 },
			errHas: []string{"data.store_size = 64", "stored at 48 px"}},
		{name: "curriculum", edit: func(c *Config) {
			c.Data.ImageSize, c.Pretrain.Curriculum = 48, []CurriculumStage{{Until: 0.5, Scale: 0.5}, {Until: 0.75, Scale: 0.6667}}
		}},
		{name: "curriculum to the end", edit: func(c *Config) { c.Pretrain.Curriculum = []CurriculumStage{{Until: 1, Scale: 0.5}} },
			errHas: []string{"pretrain.curriculum[0].until = 1", "must be in (0, 1)", "the last epochs train at data.image_size"}},
		{name: "curriculum stage bounds", edit: func(c *Config) {
			c.Pretrain.Curriculum = []CurriculumStage{{Until: 0.5, Scale: 1.5}, {Until: 0.4, Scale: 0}}
		}, errHas: []string{"pretrain.curriculum[0].scale = 1.5", "(0, 1]", "pretrain.curriculum[1].until = 0.4", "must be in (0.5, 1)", "pretrain.curriculum[1].scale = 0"}},
		{name: "pretext blocks", edit: func(c *Config) { c.Model.PretextBlocks = 1 }},
		{name: "pretext blocks bounds", edit: func(c *Config) { c.Model.PretextBlocks = 3 }, errHas: []string{"model.pretext_blocks = 3", "0..2"}},
		{name: "pretext blocks of a resnet", edit: func(c *Config) { c.Model.Name, c.Model.PretextBlocks = ModelResNet18, 1 },
			errHas: []string{"model.pretext_blocks = 1", "only the small and NIN networks", "resnet18"}},
		{name: "pretext blocks in the joint mode", edit: func(c *Config) {
			c.Model.PretextBlocks, c.Mode, c.Joint = 1, ModeJoint, DefaultJoint(*c)
		}, errHas: []string{"model.pretext_blocks = 1 with mode \"joint\"", "keeps every block"}},
		{name: "wider small", edit: func(c *Config) { c.Model.Width = 256 }},
		{name: "wider small with pretext blocks", edit: func(c *Config) { c.Model.Width, c.Model.PretextBlocks = 192, 1 }},
		{name: "width bounds", edit: func(c *Config) { c.Model.Width = 2048 }, errHas: []string{"model.width = 2048", "16..1024"}},
		{name: "width not a multiple of 4", edit: func(c *Config) { c.Model.Width = 130 }, errHas: []string{"model.width = 130", "multiple of 4"}},
		{name: "width of a resnet", edit: func(c *Config) { c.Model.Name, c.Model.Width = ModelResNet18, 256 },
			errHas: []string{"model.width = 256", "only the small and NIN networks", "resnet18"}},
		{name: "random-resized crop", edit: func(c *Config) {
			c.Pretrain.Augmentation = AugmentConfig{Flip: true, CropScale: []float64{0.2, 1}, CropRatio: []float64{0.75, 1.25},
				ColorJitter: JitterConfig{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Prob: 0.8}, Grayscale: 0.2}
		}},
		{name: "crop scale with pad", edit: func(c *Config) { c.Pretrain.Augmentation.CropScale = []float64{0.2, 1} },
			errHas: []string{"pretrain.augmentation.crop_pad = 4", "crop_scale"}},
		{name: "crop scale order", edit: func(c *Config) { c.Supervised.Augmentation = AugmentConfig{CropScale: []float64{0.9, 0.2}} },
			errHas: []string{"supervised.augmentation.crop_scale = [0.9 0.2]", "0.001 <= min <= max <= 1"}},
		{name: "crop scale length", edit: func(c *Config) { c.Supervised.Augmentation = AugmentConfig{CropScale: []float64{0.5}} },
			errHas: []string{"supervised.augmentation.crop_scale = [0.5]", "[min, max]"}},
		{name: "crop ratio alone", edit: func(c *Config) { c.Pretrain.Augmentation.CropRatio = []float64{0.5, 2} },
			errHas: []string{"pretrain.augmentation.crop_ratio", "without pretrain.augmentation.crop_scale"}},
		{name: "jitter without prob", edit: func(c *Config) { c.Pretrain.Augmentation.ColorJitter.Brightness = 0.4 },
			errHas: []string{"pretrain.augmentation.color_jitter", "prob > 0"}},
		{name: "jitter too strong", edit: func(c *Config) {
			c.Pretrain.Augmentation.ColorJitter = JitterConfig{Saturation: 2, Prob: 1}
		}, errHas: []string{"pretrain.augmentation.color_jitter.saturation = 2", "0..1"}},
		{name: "grayscale", edit: func(c *Config) { c.Pretrain.Augmentation.Grayscale = 1.5 },
			errHas: []string{"pretrain.augmentation.grayscale = 1.5", "0..1"}},
		{name: "probe folds", edit: func(c *Config) { c.Eval.ProbeFolds = 1 }, errHas: []string{"eval.probe_folds = 1", "2..20"}},
		{name: "probe dims", edit: func(c *Config) { c.Eval.ProbeDims = -3 }, errHas: []string{"eval.probe_dims = -3", "1..65536"}},
		{name: "probe folds without probes", edit: func(c *Config) { c.Eval.LinearProbes = false },
			errHas: []string{"eval.probe_folds = 5", "linear_probes off"}},
		{name: "batch 0", edit: func(c *Config) { c.Pretrain.GlobalBatch = 0 }, errHas: []string{"pretrain.global_batch", "1..65536"}},
		{name: "negative lr", edit: func(c *Config) { c.Pretrain.LR = -1 }, errHas: []string{"pretrain.lr"}},
		{name: "momentum 1", edit: func(c *Config) { c.Pretrain.Momentum = 1 }, errHas: []string{"pretrain.momentum", "0..0.999"}},
		{name: "nesterov without momentum", edit: func(c *Config) { c.Pretrain.Momentum = 0 }, errHas: []string{"pretrain.nesterov"}},
		{name: "bucket too large", edit: func(c *Config) { c.Pretrain.GradBucketMiB = 2048 }, errHas: []string{"pretrain.grad_bucket_mib", "0..1024"}},
		{name: "bf16 without buckets", edit: func(c *Config) { c.Pretrain.GradBucketMiB, c.Pretrain.GradBF16 = 0, true },
			errHas: []string{"pretrain.grad_bf16", "grad_bucket_mib > 0"}},
		{name: "schedule kind", edit: func(c *Config) { c.Pretrain.Schedule.Kind = "linear" }, errHas: []string{"pretrain.schedule.kind"}},
		{name: "milestones", edit: func(c *Config) {
			c.Pretrain.Schedule = ScheduleConfig{Kind: ScheduleStep, Gamma: 0.1, Milestones: []int{5, 3}}
		}, errHas: []string{"pretrain.schedule.milestones[1]"}},
		{name: "milestone past end", edit: func(c *Config) {
			c.Pretrain.Schedule = ScheduleConfig{Kind: ScheduleStep, Gamma: 0.1, Milestones: []int{50}}
		}, errHas: []string{"pretrain.schedule.milestones[0]", "1..10"}},
		{name: "gamma", edit: func(c *Config) { c.Pretrain.Schedule = ScheduleConfig{Kind: ScheduleStep} }, errHas: []string{"pretrain.schedule.gamma"}},
		{name: "warmup", edit: func(c *Config) { c.Supervised.Schedule.WarmupEpochs = 100 }, errHas: []string{"supervised.schedule.warmup_epochs", "0..40"}},
		{name: "crop pad", edit: func(c *Config) { c.Supervised.Augmentation.CropPad = -1 }, errHas: []string{"supervised.augmentation.crop_pad"}},
		{name: "optimizer", edit: func(c *Config) { c.Supervised.Optimizer = "rmsprop" }, errHas: []string{"supervised.optimizer", "adam, sgd"}},
		{name: "epochs", edit: func(c *Config) { c.Supervised.Epochs = 0 }, errHas: []string{"supervised.epochs", "1..10000"}},
		{name: "pretrain adam", edit: func(c *Config) {
			c.Pretrain.Optimizer, c.Pretrain.Momentum, c.Pretrain.Nesterov = OptimizerAdam, 0, false
		}},
		{name: "pretrain optimizer", edit: func(c *Config) { c.Pretrain.Optimizer = "lamb" }, errHas: []string{"pretrain.optimizer", "sgd, adam"}},
		{name: "no frozen evaluations", edit: func(c *Config) { c.Eval = EvalConfig{} }},
		{name: "knn k 0", edit: func(c *Config) { c.Eval.KNNK = 0 }, errHas: []string{"eval.knn_k", "1..1000"}},
		{name: "knn temperature", edit: func(c *Config) { c.Eval.KNNTemperature = 0 }, errHas: []string{"eval.knn_temperature", "0.001..10"}},
		{name: "knn settings with knn off", edit: func(c *Config) { c.Eval.KNN = false }, errHas: []string{"eval.knn_k", "eval.knn off"}},
		{name: "freeze", edit: func(c *Config) { c.Supervised.FreezeBlocks = 4 }, errHas: []string{"supervised.freeze_blocks", "0..3"}},
		{name: "checkpoint", edit: func(c *Config) { c.CheckpointEvery = 0 }, errHas: []string{"checkpoint_every_steps"}},
		{name: "joint", edit: func(c *Config) {
			c.Mode, c.Joint = ModeJoint, JointConfig{Weight: 1, LabeledBatch: 16, FinetuneEpochs: 5}
		}},
		{name: "pretrain-finetune named", edit: func(c *Config) { c.Mode = ModePretrainFinetune }},
		{name: "mode", edit: func(c *Config) { c.Mode = "s4l" }, errHas: []string{"mode", "pretrain-finetune, joint"}},
		{name: "joint recipe without the mode", edit: func(c *Config) { c.Joint.Weight = 1 }, errHas: []string{"joint", `set mode "joint"`}},
		{name: "joint weight", edit: func(c *Config) { c.Mode, c.Joint = ModeJoint, JointConfig{LabeledBatch: 16} },
			errHas: []string{"joint.weight", "1e-06..1000"}},
		{name: "joint batch", edit: func(c *Config) { c.Mode, c.Joint = ModeJoint, JointConfig{Weight: 1} },
			errHas: []string{"joint.labeled_batch", "1..65536"}},
		{name: "self-training", edit: func(c *Config) { c.SelfTrain = SelfTrainConfig{Rounds: 1, Keep: 0.5, MinConfidence: 0.5, Epochs: 10} }},
		{name: "self-training settings while off", edit: func(c *Config) { c.SelfTrain.Keep = 0.5 },
			errHas: []string{"self_train.rounds = 0", "leave self_train out"}},
		{name: "self-training rounds", edit: func(c *Config) { c.SelfTrain = SelfTrainConfig{Rounds: 6, Keep: 0.5, Epochs: 10} },
			errHas: []string{"self_train.rounds", "1..5"}},
		{name: "self-training keep", edit: func(c *Config) { c.SelfTrain = SelfTrainConfig{Rounds: 1, Keep: 1.5, Epochs: 10} },
			errHas: []string{"self_train.keep = 1.5", "(0, 1]"}},
		{name: "self-training confidence", edit: func(c *Config) { c.SelfTrain = SelfTrainConfig{Rounds: 1, Keep: 1, MinConfidence: 1, Epochs: 10} },
			errHas: []string{"self_train.min_confidence = 1", "[0, 1)"}},
		{name: "self-training epochs", edit: func(c *Config) { c.SelfTrain = SelfTrainConfig{Rounds: 1, Keep: 1} },
			errHas: []string{"self_train.epochs", "1..10000"}},
		{name: "self-training schedule", edit: func(c *Config) {
			c.Supervised.Schedule = ScheduleConfig{Kind: ScheduleStep, Milestones: []int{20}, Gamma: 0.1}
			c.SelfTrain = SelfTrainConfig{Rounds: 1, Keep: 1, Epochs: 10}
		}, errHas: []string{"supervised.schedule (over self_train.epochs).milestones[0] = 20", "1..10"}},
		{name: "self-training in the joint mode", edit: func(c *Config) {
			c.Mode, c.Joint = ModeJoint, JointConfig{Weight: 1, LabeledBatch: 16, FinetuneEpochs: 5}
			c.SelfTrain = SelfTrainConfig{Rounds: 1, Keep: 1, Epochs: 10}
		}, errHas: []string{"self_train.rounds = 1 in the joint mode"}},
		{name: "two errors", edit: func(c *Config) { c.Supervised.Batch = 0; c.Data.ImageSize = 0 },
			errHas: []string{"supervised.batch", "data.image_size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.errHas) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %v, got none", tc.errHas)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	_, err := Parse([]byte(`{"preset":"quick","epochz":3}`))
	if err == nil || !strings.Contains(err.Error(), "epochz") {
		t.Errorf("Parse with an unknown field = %v, want an error naming it", err)
	}
}

func TestParseRejectsTrailingData(t *testing.T) {
	good := string(DefaultConfig().JSON())
	if _, err := Parse([]byte(good + " \n")); err != nil {
		t.Fatalf("Parse with trailing white space: %v", err)
	}
	for _, tail := range []string{"}", "{}", "x", ` {"seed":2}`} {
		_, err := Parse([]byte(good + tail))
		if err == nil || !strings.Contains(err.Error(), "data after the JSON object") {
			t.Errorf("Parse(config + %q) = %v, want an error about data after the object", tail, err)
		}
	}
}

func TestSetKeys(t *testing.T) {
	set, err := SetKeys([]byte(`{"seed": 0, "data": {"dir": "", "image_size": 32}, "model": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seed", "data", "data.dir", "data.image_size", "model"} {
		if !set[k] {
			t.Errorf("SetKeys lacks %q", k)
		}
	}
	if set["preset"] || set["data.augment"] || len(set) != 5 {
		t.Errorf("SetKeys = %v, want exactly the five keys given", set)
	}
	if _, err := SetKeys([]byte(`[1]`)); !errors.Is(err, ErrConfig) {
		t.Errorf("SetKeys(array) = %v, want ErrConfig", err)
	}
}

// TestPretrainSizes walks a curriculum's epochs: each stage's side for
// the epochs before its end, then the training size; the sides follow
// the image size and never go below the network's smallest input.
func TestPretrainSizes(t *testing.T) {
	stages := []CurriculumStage{{Until: 0.5, Scale: 0.5}, {Until: 0.75, Scale: 0.6667}}
	for _, tc := range []struct {
		name         string
		model        string
		size, epochs int
		stages       []CurriculumStage
		want         []int
	}{
		{"quick", ModelSmall, 48, 12, stages, []int{24, 24, 24, 24, 24, 24, 32, 32, 32, 48, 48, 48}},
		{"another size", ModelSmall, 32, 4, stages, []int{16, 16, 21, 32}},
		{"few epochs", ModelSmall, 16, 2, stages, []int{8, 16}},
		{"one epoch", ModelSmall, 48, 1, stages, []int{48}},
		{"the smallest side", ModelSmall, 12, 4, stages, []int{8, 8, 8, 12}},
		{"a resnet", ModelResNet18, 48, 4, stages, []int{32, 32, 32, 48}},
		{"none", ModelSmall, 32, 3, nil, []int{32, 32, 32}},
	} {
		c := DefaultConfig()
		c.Model.Name, c.Data.ImageSize, c.Pretrain.Epochs, c.Pretrain.Curriculum = tc.model, tc.size, tc.epochs, tc.stages
		if got := c.PretrainSizes(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: PretrainSizes() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOverlayMergesKeyByKey(t *testing.T) {
	base, _ := Preset(PresetQuick)
	c, err := Overlay(base, []byte(`{"pretrain":{"epochs":3,"augmentation":{"flip":false}},"self_train":{"rounds":1,"keep":1,"epochs":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Pretrain.Epochs != 3 || c.Pretrain.Augmentation.Flip || c.Pretrain.Augmentation.CropPad != base.Pretrain.Augmentation.CropPad ||
		c.Pretrain.GlobalBatch != base.Pretrain.GlobalBatch || c.SelfTrain.Rounds != 1 {
		t.Errorf("overlay gave %+v", c)
	}
	for doc, want := range map[string]string{
		`{"pretrain":{"epochz":3}}`:   "epochz",
		`{"supervised":{"batch":0}}`:  "supervised.batch",
		`["a list"]`:                  "mapping",
		`{"self_train":{"keep":0.5}}`: "self_train.rounds",
	} {
		if _, err := Overlay(base, []byte(doc)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("overlay %s: %v, want ErrConfig naming %s", doc, err, want)
		}
	}
}
