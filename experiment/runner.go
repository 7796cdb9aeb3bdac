package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/recipe"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/shard"
)

// Output file names in the Runner's OutDir.
const (
	FileReport     = "report.json"
	FileReportMD   = "report.md"
	FileCurves     = "curves.png"
	FileConfusion  = "confusion.png"
	FileProbes     = "probes.png"
	FileManifest   = "manifest.json"
	FileConfig     = "config.json"
	FileBaseline   = "baseline.json"
	FilePretrained = "pretrained.safetensors"
	FileFinetuned  = "finetuned.safetensors"
	FileBaselineCk = "baseline.safetensors"
	FileResume     = "pretrain-resume.safetensors"
	// The self-trained students (job.SelfTrainConfig) of both arms.
	FileBaselineSelfCk  = "baseline-selftrained.safetensors"
	FileFinetunedSelfCk = "finetuned-selftrained.safetensors"
)

// Seed offsets: the baseline's initial weights and the fine-tuning head
// are drawn from the job seed plus these; both supervised runs share the
// data order and augmentation (supervisedStream).
const (
	baselineInitOffset = 1000
	headInitOffset     = 2000
	reinitOffset       = 3000
	randomInitOffset   = 4000
	supervisedStream   = 0x7375706572766973
)

// Runner runs the non-distributed phases of jobs and writes the report; it
// implements the coordinator's Phases (Prepare, Baseline, FineTune) as is. The zero value works and writes nothing; set OutDir to write the
// outputs. Methods are safe for concurrent use.
type Runner struct {
	// OutDir receives report.json, report.md, the plots, the manifest and
	// the checkpoints; "" writes no files.
	OutDir string
	// Cluster says where pretraining ran, for the report.
	Cluster ClusterInfo
	// Progress, if set, receives training progress.
	Progress func(Event)
	// Jobs says OutDir is a coordinator's, which successive jobs share: a
	// job whose configuration differs from the folder's config.json starts
	// the folder's manifest over (the job before it is finished; its files
	// are the coordinators' result blobs). Without it (whorl run), a
	// manifest of other images or another split is refused, as a rerun in
	// the wrong folder.
	Jobs bool
	// Images sizes how the phases read the job's images: they are not held
	// in memory but read through a cache of Images.CacheBytes
	// (job.OpenData). The zero value is job.DefaultStreamConfig.
	Images job.StreamConfig

	mu       sync.Mutex
	data     map[string]*job.Data
	start    time.Time
	prepared time.Time // end of the last Prepare
	pretrain time.Duration
}

// SetStart sets the start of the job for timing.total_seconds (default: the
// first Prepare).
func (r *Runner) SetStart(t time.Time) { r.mu.Lock(); r.start = t; r.mu.Unlock() }

// SetPretrainTiming records how long pretraining took (when the caller
// measured it; otherwise the time from Prepare to Baseline counts as
// pretraining).
func (r *Runner) SetPretrainTiming(d time.Duration) {
	r.mu.Lock()
	r.pretrain = d
	r.mu.Unlock()
}

// config decodes and validates a job configuration.
func (r *Runner) config(configJSON []byte) (job.Config, error) {
	c, err := job.Parse(configJSON)
	if err != nil {
		return job.Config{}, fmt.Errorf("job config: %w", err)
	}
	return c, nil
}

// load returns the job's data, loading it once per configuration.
func (r *Runner) load(ctx context.Context, c job.Config) (*job.Data, error) {
	key := job.Digest(c)
	r.mu.Lock()
	d := r.data[key]
	r.mu.Unlock()
	if d != nil {
		return d, nil
	}
	d, err := job.OpenData(ctx, c, r.streamConfig())
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.data == nil {
		r.data = map[string]*job.Data{}
	}
	r.data[key] = d
	return d, nil
}

// streamConfig is r.Images, or the default.
func (r *Runner) streamConfig() job.StreamConfig {
	if r.Images == (job.StreamConfig{}) {
		return job.DefaultStreamConfig()
	}
	return r.Images
}

// Prepare loads the data and split of the job and writes the manifest and
// the configuration to OutDir.
func (r *Runner) Prepare(ctx context.Context, configJSON []byte) (job.Prepared, error) {
	r.mu.Lock()
	if r.start.IsZero() {
		r.start = time.Now()
	}
	r.mu.Unlock()
	c, err := r.config(configJSON)
	if err != nil {
		return job.Prepared{}, err
	}
	d, err := r.load(ctx, c)
	if err != nil {
		return job.Prepared{}, err
	}
	if r.OutDir != "" {
		if err := os.MkdirAll(r.OutDir, 0o755); err != nil {
			return job.Prepared{}, fmt.Errorf("prepare: %w", err)
		}
		if r.Jobs && !sameConfig(filepath.Join(r.OutDir, FileConfig), c) {
			if err := os.Remove(filepath.Join(r.OutDir, FileManifest)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return job.Prepared{}, fmt.Errorf("prepare: a new job in %s: %w", r.OutDir, err)
			}
		}
		if err := keepManifest(filepath.Join(r.OutDir, FileManifest), d); err != nil {
			return job.Prepared{}, fmt.Errorf("prepare: %w", err)
		}
		if err := writeJSON(r.OutDir, FileConfig, c); err != nil {
			return job.Prepared{}, fmt.Errorf("prepare: %w", err)
		}
	}
	r.mu.Lock()
	r.prepared = time.Now()
	r.mu.Unlock()
	p := job.Prepared{TrainIDs: append([]int(nil), d.Split.Train...), Mean: d.Norm.Mean, Std: d.Norm.Std,
		Classes: len(d.Set.Classes), ManifestDigest: d.ManifestDigest, Images: d}
	if c.IsJoint() { // the labeled batches' images and classes
		p.LabeledIDs = append([]int(nil), d.LabeledTrain...)
		for _, id := range d.LabeledTrain {
			p.LabeledClasses = append(p.LabeledClasses, d.Set.Items[id].Class)
		}
	}
	return p, nil
}

// sameConfig reports whether the configuration file at path is c (by
// job.Digest); a missing or unreadable file is not.
func sameConfig(path string, c job.Config) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var old job.Config
	if err := json.Unmarshal(b, &old); err != nil {
		return false
	}
	return job.Digest(old) == job.Digest(c)
}

// keepManifest writes d's manifest to path unless the file is there: a run
// resumed in the same OutDir keeps the manifest it began with, so it must
// be intact (a damaged one is refused, naming it) and describe the same
// images and split (a data folder changed since is refused too).
func keepManifest(path string, d *job.Data) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return shard.WriteManifest(path, d.Manifest)
	}
	m, err := shard.ReadManifest(path)
	if err != nil {
		return fmt.Errorf("%w; it records the split of the run in %s: restore it, or start over in a new output folder",
			err, filepath.Dir(path))
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("manifest %s: encode: %w", path, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.ManifestDigest {
		return fmt.Errorf("manifest %s: %w: the images or split of the data folder differ from the ones this run began with; use a new output folder",
			path, shard.ErrManifest)
	}
	return nil
}

// baselineResult is what Baseline returns (and caches in OutDir).
type baselineResult struct {
	ConfigDigest string      `json:"config_sha256"`
	Result       ModelResult `json:"result"`
	// Frozen evaluates the baseline's frozen features (job.EvalConfig).
	Frozen *FrozenResult `json:"frozen,omitempty"`
	// SelfTrained is the baseline arm's self-training (job.SelfTrainConfig).
	SelfTrained *SelfTrainResult `json:"self_trained,omitempty"`
}

// Baseline trains the supervised baseline from scratch on the labeled
// training images and evaluates it; the result JSON is cached in OutDir so
// a resumed run does not redo it.
func (r *Runner) Baseline(ctx context.Context, configJSON []byte) ([]byte, error) {
	t0 := time.Now()
	r.mu.Lock()
	if r.pretrain == 0 {
		from := r.prepared
		if from.IsZero() { // resumed: pretraining continued since the start
			from = r.start
		}
		if !from.IsZero() {
			r.pretrain = t0.Sub(from)
		}
	}
	r.mu.Unlock()
	c, err := r.config(configJSON)
	if err != nil {
		return nil, err
	}
	if b, ok := r.cachedBaseline(c); ok {
		return b, nil
	}
	d, err := r.load(ctx, c)
	if err != nil {
		return nil, err
	}
	n, err := recipe.Net(c, len(d.Set.Classes), int64(c.Seed)+baselineInitOffset)
	if err != nil {
		return nil, err
	}
	sup := c.Supervised
	sup.BodyLRScale = 1 // from scratch: one rate for every layer
	hist, err := Supervised(ctx, n, d, sup, 0, c.Seed^supervisedStream, pb.Phase_PHASE_BASELINE, r.Progress)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	res, err := r.evaluate(ctx, n, d, hist)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	br := baselineResult{ConfigDigest: job.Digest(c)}
	if c.Eval.Any() {
		fr, err := EvaluateFrozen(ctx, NetBaseline, n, d, c.Eval)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		br.Frozen = &fr
	}
	res.Seconds = time.Since(t0).Seconds()
	if res.Checkpoint, err = r.saveNet(FileBaselineCk, n, d, d.Set.Classes); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	br.Result = res
	start := func() (*model.Net, int, error) {
		n, err := recipe.Net(c, len(d.Set.Classes), int64(c.Seed)+baselineInitOffset)
		return n, 0, err
	}
	if br.SelfTrained, err = r.selfTrain(ctx, c, d, n, start, sup, pb.Phase_PHASE_BASELINE, FileBaselineSelfCk); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	b, err := json.Marshal(br)
	if err != nil {
		return nil, fmt.Errorf("baseline: encode result: %w", err)
	}
	if r.OutDir != "" {
		if err := writeFileAtomic(filepath.Join(r.OutDir, FileBaseline), b); err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
	}
	return b, nil
}

// cachedBaseline returns a baseline result of the same configuration saved
// by an earlier run in OutDir.
func (r *Runner) cachedBaseline(c job.Config) ([]byte, bool) {
	if r.OutDir == "" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(r.OutDir, FileBaseline))
	if err != nil {
		return nil, false
	}
	var br baselineResult
	if json.Unmarshal(b, &br) != nil || br.ConfigDigest != job.Digest(c) {
		return nil, false
	}
	return b, true
}

// evaluate measures a trained classifier on test and validation.
func (r *Runner) evaluate(ctx context.Context, n *model.Net, d *job.Data, hist []job.EpochStat) (ModelResult, error) {
	test, err := Classify(ctx, n, d, d.Split.Test)
	if err != nil {
		return ModelResult{}, err
	}
	res := ModelResult{TestAccuracy: test.Accuracy(), PerClass: perClassMap(d.Set.Classes, test), Confusion: test, History: hist}
	if len(d.Validation) > 0 {
		val, err := Classify(ctx, n, d, d.Validation)
		if err != nil {
			return ModelResult{}, err
		}
		res.ValidationAccuracy = val.Accuracy()
	}
	return res, nil
}

// saveNet writes a network's checkpoint to OutDir and returns its name. The
// metadata carries the input normaliser and the label names, so `whorl
// predict` preprocesses images exactly as training did.
func (r *Runner) saveNet(name string, n *model.Net, d *job.Data, labels []string) (string, error) {
	if r.OutDir == "" {
		return "", nil
	}
	if err := model.SaveCheckpoint(filepath.Join(r.OutDir, name), n, nil, checkpointMeta(d, labels)); err != nil {
		return "", err
	}
	return name, nil
}

// rotationNames label the four outputs of the rotation head (degrees).
var rotationNames = []string{"0", "90", "180", "270"}

// checkpointMeta is the metadata of a checkpoint trained on d whose outputs
// are labels: the input normaliser and the label names.
func checkpointMeta(d *job.Data, labels []string) map[string]string {
	mean, _ := json.Marshal(d.Norm.Mean)
	std, _ := json.Marshal(d.Norm.Std)
	names, _ := json.Marshal(labels)
	return map[string]string{job.MetaNormMean: string(mean), job.MetaNormStd: string(std),
		job.MetaClassNames: string(names)}
}
