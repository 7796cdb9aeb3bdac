package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/experiment"
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

// runPredict loads the checkpoint and its normaliser (or the flags') and
// classifies the images (experiment.Predict).
func runPredict(ctx context.Context, o predictOpts) ([]experiment.Prediction, error) {
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
	return experiment.Predict(ctx, ck, o.images, norm)
}

// printPredictions writes one line per image, or a JSON array.
func printPredictions(w io.Writer, preds []experiment.Prediction, asJSON bool) error {
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
