package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

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
