package main

import (
	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/experiment"
)

func init() { register(newPredictCmd) }

func newPredictCmd() *cobra.Command {
	var o experiment.PredictFiles
	var asJSON bool
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
			preds, err := o.Run(cmd.Context())
			if err != nil {
				return err
			}
			return experiment.PrintPredictions(cmd.OutOrStdout(), preds, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Checkpoint, "checkpoint", "", "safetensors checkpoint file (required)")
	f.StringArrayVar(&o.Images, "image", nil, "image file (JPEG or PNG); repeat for several")
	f.StringVar(&o.Mean, "mean", "", "per-channel mean r,g,b of [0,1] pixels (overrides the checkpoint's)")
	f.StringVar(&o.Std, "std", "", "per-channel standard deviation r,g,b (overrides the checkpoint's)")
	f.BoolVar(&asJSON, "json", false, "print a JSON array")
	_ = cmd.MarkFlagRequired("checkpoint")
	_ = cmd.MarkFlagRequired("image")
	return cmd
}
