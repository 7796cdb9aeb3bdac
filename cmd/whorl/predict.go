package main

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

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/shard"
)

func init() { register(newPredictCmd) }

// predictOpts are the flags of `whorl predict`.
type predictOpts struct {
	checkpoint string
	images     []string
	mean, std  string
	asJSON     bool
}

// prediction is one image's result.
type prediction struct {
	Image         string    `json:"image"`
	Class         int       `json:"class"`
	Label         string    `json:"label"`
	Probability   float64   `json:"probability"`
	Logits        []float32 `json:"logits"`
	Probabilities []float64 `json:"probabilities"`
}

func newPredictCmd() *cobra.Command {
	var o predictOpts
	cmd := &cobra.Command{
		Use:   "predict",
		Short: "Classify images with a checkpoint and print logits and the predicted class",
		Long: `Loads a whorl (or rotnet.py-compatible) safetensors checkpoint, decodes each image
as training does (centred square crop resized to the network's input size, per-channel
normalisation), runs the network in evaluation mode and prints, for each image, the
logits and the predicted class. The normaliser comes from the checkpoint metadata
(whorl.norm_mean / whorl.norm_std) or from --mean and --std.`,
		Example: `  whorl predict --checkpoint out/finetuned.safetensors --image rose.jpg
  whorl predict --checkpoint c.safetensors --image a.jpg --image b.png --json
  whorl predict --checkpoint c.safetensors --image a.jpg --mean 0.46,0.42,0.30 --std 0.29,0.26,0.28`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			preds, err := runPredict(cmd.Context(), o)
			if err != nil {
				return err
			}
			return printPredictions(cmd.OutOrStdout(), preds, o.asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.checkpoint, "checkpoint", "", "safetensors checkpoint file (required)")
	f.StringArrayVar(&o.images, "image", nil, "image file (JPEG or PNG); repeat for several")
	f.StringVar(&o.mean, "mean", "", "per-channel mean r,g,b of [0,1] pixels (overrides the checkpoint's)")
	f.StringVar(&o.std, "std", "", "per-channel standard deviation r,g,b (overrides the checkpoint's)")
	f.BoolVar(&o.asJSON, "json", false, "print a JSON array")
	_ = cmd.MarkFlagRequired("checkpoint")
	_ = cmd.MarkFlagRequired("image")
	return cmd
}

// runPredict loads the checkpoint and images and classifies them in one batch.
func runPredict(ctx context.Context, o predictOpts) ([]prediction, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ck, err := model.ReadCheckpoint(o.checkpoint)
	if err != nil {
		return nil, err
	}
	norm, err := predictNormalizer(ck.Meta, o)
	if err != nil {
		return nil, err
	}
	cfg := ck.Net.Config()
	ds, err := decodeImages(o.images, cfg.InputSize)
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(o.images))
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
	out := make([]prediction, len(idx))
	for i, path := range o.images {
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

// predictNormalizer takes the flags if given, else the checkpoint metadata.
func predictNormalizer(meta map[string]string, o predictOpts) (shard.Normalizer, error) {
	var nz shard.Normalizer
	mean, std := o.mean, o.std
	meanFrom, stdFrom := "--mean", "--std"
	if mean == "" {
		mean = strings.Trim(meta[job.MetaNormMean], "[]")
		meanFrom = fmt.Sprintf("checkpoint %s metadata %s", o.checkpoint, job.MetaNormMean)
	}
	if std == "" {
		std = strings.Trim(meta[job.MetaNormStd], "[]")
		stdFrom = fmt.Sprintf("checkpoint %s metadata %s", o.checkpoint, job.MetaNormStd)
	}
	if mean == "" || std == "" {
		return nz, fmt.Errorf("predict: checkpoint %s has no input normaliser (%s, %s); pass --mean and --std",
			o.checkpoint, job.MetaNormMean, job.MetaNormStd)
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
func newPrediction(path string, logits []float32, names []string) prediction {
	p := prediction{Image: path, Logits: append([]float32(nil), logits...), Probabilities: make([]float64, len(logits))}
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

// printPredictions writes one line per image, or a JSON array.
func printPredictions(w io.Writer, preds []prediction, asJSON bool) error {
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
