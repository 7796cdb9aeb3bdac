package experiment

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/whorl-ml/whorl/internal/bytesize"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model/recipe"
	"github.com/whorl-ml/whorl/shard"
)

// MemoryPart is one term of a job's memory estimate.
type MemoryPart struct {
	// What the bytes hold.
	What string
	// Bytes is its estimated size.
	Bytes int64
}

// itemBytes is what the catalogue holds per photo: its item (path, digest,
// class) and, for a packed set, its index entry (shard, offset, size).
const itemBytes = 400

// runtimeBytes is the fixed part of a coordinator's memory beside a job's
// phases: the Go runtime, raft's log cache and the gRPC servers.
const runtimeBytes = 128 << 20

// EstimateMemory estimates the peak memory of the phases the raft leader
// runs for cfg (the supervised baseline, fine-tuning, the evaluations and
// the frozen-feature probes; pretraining runs on the workers), as terms
// that add up to the peak:
//   - the catalogue of the photos (itemBytes a photo), counted in the data
//     folder, the packed index or the embedded set without decoding;
//   - the decoded-photo cache the phases read through (job.OpenData): the
//     photos at data's stored side (3 bytes a pixel), at most cacheBytes;
//   - the supervised network being trained: weights, gradients, the
//     optimiser's state (2 per weight for Adam, 1 for SGD with momentum),
//     BatchNorm state, and its workspace (activations, scratch, caches,
//     reordered weights) at the larger of the supervised and evaluation
//     batches: the engine's own count of what it allocates
//     (model.MeasureFootprint);
//   - two more networks' weights held at once (the pretrained and the
//     baseline network while fine-tuning and probing);
//   - the probes' features of the labeled and test photos for one network
//     (each block's pooled features, or eval.probe_dims of them);
//   - the runtime, raft, gRPC and GEMM's packing buffers (a fixed 128 MiB).
//
// Nothing is built or decoded: it costs a listing of the data folder.
func EstimateMemory(cfg job.Config, cacheBytes int64) ([]MemoryPart, error) {
	o, err := shard.OpenOrigin(context.Background(), cfg.Data.Dir)
	if err != nil {
		return nil, fmt.Errorf("estimate memory: count the photos: %w", err)
	}
	images, classes := len(o.Items), len(o.Classes)
	o.Close()
	batch := max(cfg.Supervised.Batch, evalBatch)
	n, err := recipe.Footprint(cfg, 5, batch)
	if err != nil {
		return nil, fmt.Errorf("estimate memory: %w", err)
	}
	side := int64(cfg.Data.Stored())
	weights := int64(n.Params+n.State) * 4
	opt := int64(0)
	switch {
	case cfg.Supervised.Optimizer == job.OptimizerAdam:
		opt = 2
	case cfg.Supervised.Momentum > 0:
		opt = 1
	}
	features := int64(0)
	if cfg.Eval.LinearProbes || cfg.Eval.KNN {
		for _, d := range n.FeatureDims {
			if cfg.Eval.ProbeDims > 0 {
				d = max(d, cfg.Eval.ProbeDims)
			}
			features += int64(d)
		}
	}
	decoded := int64(images) * 3 * side * side
	return []MemoryPart{
		{fmt.Sprintf("catalogue of %d photos", images), int64(images) * itemBytes},
		{fmt.Sprintf("decoded-photo cache (%d photos at %d px: %s)", images, side, bytesize.Human(decoded)), min(decoded, cacheBytes)},
		{fmt.Sprintf("training %s at batch %d", cfg.Model.Name, batch),
			weights + int64(n.Params)*4*(1+opt) + n.Workspace + int64(batch)*3*int64(cfg.Data.ImageSize*cfg.Data.ImageSize)*4},
		{"two more networks' weights", 2 * weights},
		{"probe features", int64(probed(cfg.Split, images, classes)) * features * 4},
		{"runtime, raft and gRPC", runtimeBytes},
	}, nil
}

// probed is about how many photos the probes see: the test photos and the
// labeled ones.
func probed(s job.SplitConfig, images, classes int) int {
	test := int(math.Ceil(s.TestFraction * float64(images)))
	if s.TestPerClass > 0 {
		test = min(images, s.TestPerClass*classes)
	}
	return test + int(math.Ceil(s.LabeledFraction*float64(images-test)))
}

// TotalBytes is the sum of the parts.
func TotalBytes(parts []MemoryPart) int64 {
	var t int64
	for _, p := range parts {
		t += p.Bytes
	}
	return t
}

// FormatParts lists the parts as "what: 1.2 GiB, ...".
func FormatParts(parts []MemoryPart) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = fmt.Sprintf("%s: %s", p.What, bytesize.Human(p.Bytes))
	}
	return strings.Join(s, ", ")
}

// EstimateMemory is EstimateMemory for a job's configuration bytes, as
// coordinator.MemoryEstimator asks for it at submit.
func (r *Runner) EstimateMemory(configJSON []byte) (int64, string, error) {
	cfg, err := job.Parse(configJSON)
	if err != nil {
		return 0, "", err
	}
	parts, err := EstimateMemory(cfg, r.streamConfig().CacheBytes)
	if err != nil {
		return 0, "", err
	}
	return TotalBytes(parts), FormatParts(parts), nil
}

// CheckData opens the job's data and closes it again: a class folder is
// listed, a packed dataset's index read through its store (a bucket
// reached with this process's credentials). The coordinator's leader calls
// it at submit (coordinator.DataChecker), so a missing bucket or rejected
// credentials are refused there, naming the URL, not at the first step.
func (r *Runner) CheckData(ctx context.Context, configJSON []byte) error {
	c, err := job.Parse(configJSON)
	if err != nil {
		return err
	}
	o, err := shard.OpenOrigin(ctx, c.Data.Dir)
	if err != nil {
		return err
	}
	return o.Close()
}
