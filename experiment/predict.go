package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

// Prediction is one image's class by a network: the arg-max of its logits
// and their softmax.
type Prediction struct {
	Image         string    `json:"image"`
	Class         int       `json:"class"`
	Label         string    `json:"label"`
	Probability   float64   `json:"probability"`
	Logits        []float32 `json:"logits"`
	Probabilities []float64 `json:"probabilities"`
}

// Predict classifies the image files in one batch with the checkpoint's
// network in evaluation mode, each decoded as training does (centred square
// resized to the network's input, normalised by norm); the class names are
// the checkpoint's (whorl.class_names), else numbered.
func Predict(ctx context.Context, ck *model.Checkpoint, images []string, norm shard.Normalizer) ([]Prediction, error) {
	cfg := ck.Net.Config()
	ds, err := decodeImages(images, cfg.InputSize)
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(images))
	for i := range idx {
		idx[i] = i
	}
	x, _ := shard.ClassBatch(ds, idx, norm, shard.Augment{}, nil, nil, nil)
	ck.Net.SetTraining(false)
	logits, err := ck.Net.Forward(ctx, x, len(idx))
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	names := classNames(ck.Meta, cfg.Classes)
	out := make([]Prediction, len(idx))
	for i, path := range images {
		out[i] = newPrediction(path, logits[i*cfg.Classes:(i+1)*cfg.Classes], names)
	}
	return out, nil
}

// decodeImages decodes every image to size x size RGB and wraps them in a Dataset.
func decodeImages(paths []string, size int) (*shard.Dataset, error) {
	pix := make([]uint8, 0, len(paths)*size*size*3)
	items := make([]shard.Item, len(paths))
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		px, err := shard.Decode(data, size, shard.DefaultMaxPixels)
		if err != nil {
			return nil, fmt.Errorf("predict: image %s: %w", p, err)
		}
		pix = append(pix, px...)
		items[i] = shard.Item{Path: filepath.ToSlash(p)}
	}
	ds, err := shard.NewDataset([]string{"?"}, items, size, pix)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	return ds, nil
}

// classNames reads the class names from the metadata, or numbers the classes.
func classNames(meta map[string]string, classes int) []string {
	var names []string
	if err := json.Unmarshal([]byte(meta[job.MetaClassNames]), &names); err == nil && len(names) == classes {
		return names
	}
	names = make([]string, classes)
	for i := range names {
		names[i] = "class " + strconv.Itoa(i)
	}
	return names
}

// newPrediction computes the softmax and arg-max of one image's logits.
func newPrediction(path string, logits []float32, names []string) Prediction {
	p := Prediction{Image: path, Logits: append([]float32(nil), logits...), Probabilities: make([]float64, len(logits))}
	mx := math.Inf(-1)
	for j, v := range logits {
		if float64(v) > mx {
			mx, p.Class = float64(v), j
		}
	}
	var sum float64
	for j, v := range logits {
		p.Probabilities[j] = math.Exp(float64(v) - mx)
		sum += p.Probabilities[j]
	}
	for j := range p.Probabilities {
		p.Probabilities[j] /= sum
	}
	p.Label, p.Probability = names[p.Class], p.Probabilities[p.Class]
	return p
}

// PredictFiles are what `whorl predict` classifies with: a checkpoint
// file, the image files, and the normaliser's per-channel mean and
// standard deviation as "r,g,b" of [0,1] pixels ("": the checkpoint's
// metadata, job.MetaNormMean and job.MetaNormStd), named by its flags in
// errors.
type PredictFiles struct {
	Checkpoint string
	Images     []string
	Mean, Std  string
}

// Run loads the checkpoint and its normaliser (p's own when given) and
// classifies the images (Predict).
func (p PredictFiles) Run(ctx context.Context) ([]Prediction, error) {
	if ctx == nil { // a command run without a context
		ctx = context.Background()
	}
	ck, err := model.ReadCheckpoint(p.Checkpoint)
	if err != nil {
		return nil, err
	}
	norm, err := p.normalizer(ck.Meta)
	if err != nil {
		return nil, err
	}
	return Predict(ctx, ck, p.Images, norm)
}

// normalizer takes p's mean and std if given, else the checkpoint metadata.
func (p PredictFiles) normalizer(meta map[string]string) (shard.Normalizer, error) {
	var nz shard.Normalizer
	mean, std := p.Mean, p.Std
	meanFrom, stdFrom := "--mean", "--std"
	if mean == "" {
		mean = strings.Trim(meta[job.MetaNormMean], "[]")
		meanFrom = fmt.Sprintf("checkpoint %s metadata %s", p.Checkpoint, job.MetaNormMean)
	}
	if std == "" {
		std = strings.Trim(meta[job.MetaNormStd], "[]")
		stdFrom = fmt.Sprintf("checkpoint %s metadata %s", p.Checkpoint, job.MetaNormStd)
	}
	if mean == "" || std == "" {
		return nz, fmt.Errorf("predict: checkpoint %s has no input normaliser (%s, %s); pass --mean and --std",
			p.Checkpoint, job.MetaNormMean, job.MetaNormStd)
	}
	var err error
	if nz.Mean, err = parseTriple(meanFrom, mean); err != nil {
		return nz, err
	}
	if nz.Std, err = parseTriple(stdFrom, std); err != nil {
		return nz, err
	}
	for c, s := range nz.Std {
		if !(s > 0) {
			return nz, fmt.Errorf("predict: %s channel %d is %g; want > 0", stdFrom, c, s)
		}
	}
	return nz, nil
}

// parseTriple parses "a,b,c" into three float32s.
func parseTriple(name, s string) ([3]float32, error) {
	var out [3]float32
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return out, fmt.Errorf("predict: %s %q: want 3 comma-separated numbers", name, s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return out, fmt.Errorf("predict: %s %q: %q is not a finite number", name, s, p)
		}
		out[i] = float32(v)
	}
	return out, nil
}

// PrintPredictions writes one line per image (its class, probability and
// logits), or a JSON array.
func PrintPredictions(w io.Writer, preds []Prediction, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(preds)
	}
	for _, p := range preds {
		logits := make([]string, len(p.Logits))
		for j, v := range p.Logits {
			logits[j] = strconv.FormatFloat(float64(v), 'f', 4, 32)
		}
		if _, err := fmt.Fprintf(w, "%s: %s (class %d, p=%.3f) logits [%s]\n", p.Image, p.Label, p.Class,
			p.Probability, strings.Join(logits, " ")); err != nil {
			return err
		}
	}
	return nil
}
