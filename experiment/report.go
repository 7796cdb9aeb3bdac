package experiment

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/whorl-ml/whorl/internal/atomicfile"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/shard"
)

// Report is report.json: both models' test results side by side, the
// pretext result, the gain and how the run was made.
type Report struct {
	Dataset  DatasetInfo   `json:"dataset"`
	Baseline ModelResult   `json:"baseline"`
	Pretext  PretextResult `json:"pretext"`
	Finetune ModelResult   `json:"finetune"`
	// Frozen evaluates the frozen features of the pretrained, baseline and
	// random networks block by block (job.EvalConfig; empty when off).
	Frozen []FrozenResult `json:"frozen,omitempty"`
	// SelfTraining is both arms after the self-training stage
	// (job.SelfTrainConfig; absent when it is off).
	SelfTraining *SelfTraining `json:"self_training,omitempty"`
	// Gain is finetune minus baseline test accuracy, in points of 0..1.
	Gain   float64 `json:"gain"`
	Seed   uint64  `json:"seed"`
	Preset string  `json:"preset"`
	// Model is the network's job.ModelConfig.Label ("small", "small@256").
	Model   string      `json:"model"`
	Cluster ClusterInfo `json:"cluster"`
	Timing  Timing      `json:"timing"`
	// Files names the outputs written beside report.json.
	Files  map[string]string `json:"files,omitempty"`
	Config job.Config        `json:"config"`
}

// DatasetInfo sizes the split.
type DatasetInfo struct {
	// Source is the data folder, or "embedded".
	Source  string   `json:"source"`
	Classes []string `json:"classes"`
	Train   int      `json:"train"`
	Test    int      `json:"test"`
	// Labeled counts the labeled training images (Validation of them are
	// held out for tuning and not trained on).
	Labeled        int    `json:"labeled"`
	Validation     int    `json:"validation"`
	Unlabeled      int    `json:"unlabeled"`
	ImageSize      int    `json:"image_size"`
	ManifestDigest string `json:"manifest_digest"`
	// Skipped are the unreadable image files left out of the data.
	Skipped []shard.Skipped `json:"skipped,omitempty"`
}

// ModelResult is one classifier's evaluation and training history.
type ModelResult struct {
	TestAccuracy       float64            `json:"test_accuracy"`
	ValidationAccuracy float64            `json:"validation_accuracy"`
	PerClass           map[string]float64 `json:"per_class"`
	Confusion          Confusion          `json:"confusion"`
	History            []job.EpochStat    `json:"history"`
	Seconds            float64            `json:"seconds"`
	Checkpoint         string             `json:"checkpoint,omitempty"`
}

// PretextResult is the rotation pretraining's outcome.
type PretextResult struct {
	TestRotationAccuracy float64 `json:"test_rotation_accuracy"`
	// PerClassRotation is the rotation accuracy on each class's test
	// images: how much of the pretext's error is photos without a natural
	// "up" (flowers seen from above).
	PerClassRotation map[string]float64 `json:"per_class_rotation,omitempty"`
	History          []job.EpochStat    `json:"history"`
	Checkpoint       string             `json:"checkpoint,omitempty"`
}

// ClusterInfo says where pretraining ran. Coordinators is 0 when it ran in
// one process without a coordinator.
type ClusterInfo struct {
	Workers      int `json:"workers"`
	Coordinators int `json:"coordinators"`
}

// Timing is wall-clock time of the phases.
type Timing struct {
	TotalSeconds             float64 `json:"total_seconds"`
	PretrainSeconds          float64 `json:"pretrain_seconds"`
	PretrainSamplesPerSecond float64 `json:"pretrain_samples_per_second"`
	BaselineSeconds          float64 `json:"baseline_seconds"`
	FinetuneSeconds          float64 `json:"finetune_seconds"`
	// SelfTrainSeconds is both arms' self-training (not counted in
	// BaselineSeconds and FinetuneSeconds).
	SelfTrainSeconds float64 `json:"self_train_seconds,omitempty"`
}

// perClassMap names per-class accuracies.
func perClassMap(classes []string, c Confusion) map[string]float64 {
	m := make(map[string]float64, len(classes))
	for i, v := range c.PerClass() {
		m[classes[i]] = v
	}
	return m
}

// writeJSON writes v indented to dir/name atomically (temp file + rename).
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return writeFileAtomic(filepath.Join(dir, name), append(b, '\n'))
}

// writeFileAtomic writes data to path atomically (internal/atomicfile), so
// a crash or a full disk never leaves a half-written output.
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o644) }

// requiredKeys are the report.json keys issue 7 names, as dotted paths.
var requiredKeys = []string{
	"dataset.classes", "dataset.train", "dataset.test", "dataset.labeled", "dataset.unlabeled",
	"baseline.test_accuracy", "baseline.per_class", "baseline.confusion",
	"pretext.test_rotation_accuracy",
	"finetune.test_accuracy", "finetune.per_class", "finetune.confusion",
	"gain", "seed", "preset", "model", "cluster.workers", "cluster.coordinators",
	"timing.total_seconds", "timing.pretrain_seconds", "timing.pretrain_samples_per_second",
}

// CheckReportKeys reports every required key missing from a decoded
// report.json.
func CheckReportKeys(m map[string]any) error {
	var missing []string
	for _, k := range requiredKeys {
		var cur any = m
		for _, part := range strings.Split(k, ".") {
			obj, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = obj[part]
		}
		if cur == nil {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("report.json lacks %s", strings.Join(missing, ", "))
	}
	return nil
}
