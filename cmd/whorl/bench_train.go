package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/model/trainbench"
)

func init() { registerBench(newBenchTrainCmd) }

func newBenchTrainCmd() *cobra.Command {
	var o trainbench.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Measure rotation-task training throughput of a RotNet network",
		Long: `Trains a freshly initialised network on one fixed rotation batch (batch/4 random
images x 4 rotations, like rotnet.py bench) with SGD (momentum 0.9, Nesterov,
weight decay 5e-4), after warm-up steps, for at least --seconds and 5 steps.
Reports samples/s, achieved GFLOPS (3 x rotnet.py's forward FLOPs per sample),
the peak resident set size of the process, and the machine's FMA peak on the same
threads measured right after (register-only multiply-adds of the widest vector
ISA), with the achieved fraction of it. Compare with
/usr/bin/python3 rotnet.py bench MODEL BATCH SECONDS THREADS CHANNELS_LAST SIZE in the
same session (--torch-reference runs it first, in both memory formats).`,
		Example: `  whorl bench train --model nin4 --size 32 --batch 128 --seconds 20
  whorl bench train --model small --threads 2 --json
  whorl bench train --model resnet18 --size 128 --threads 2 --torch-reference ../shared/reference/rotnet.py
  whorl bench train --model nin4 --threads 2 --torch-reference ../shared/reference/rotnet.py`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Batch%4 != 0 {
				return fmt.Errorf("--batch %d: must be a multiple of 4 (images x 4 rotations)", o.Batch)
			}
			// PyTorch first, before whorl's workspace exists (trainbench.Torch says why).
			var torch []trainbench.TorchResult
			if o.TorchRef != "" {
				var err error
				if torch, err = trainbench.Torch(cmd.Context(), o); err != nil {
					return err
				}
			}
			res, err := trainbench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			res.SetTorch(torch)
			return res.Print(cmd.OutOrStdout(), asJSON)
		},
	}
	f := cmd.Flags()
	cliflag.Enum(f, &o.Arch, "model", model.ArchNIN4, trainbench.ModelNames(), "network (rotnet.py's name; -small: a ResNet with the small stem)")
	cliflag.IntRange(f, &o.Size, "size", 32, 8, 256, "input side in pixels")
	cliflag.IntRange(f, &o.Batch, "batch", 128, 4, 4096, "samples per step (a multiple of 4)")
	cliflag.IntRange(f, &o.Threads, "threads", runtime.GOMAXPROCS(0), 1, 256, "goroutines for GEMM and layer loops")
	cliflag.IntRange(f, &o.Warmup, "warmup", 3, 0, 100, "untimed steps first")
	cliflag.FloatRange(f, &o.Seconds, "seconds", 20, 0.1, 3600, "minimum timed duration")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.StringVar(&o.TorchRef, "torch-reference", "", "rotnet.py to run first as the PyTorch baseline (both memory formats)")
	f.StringVar(&o.Python, "python", "/usr/bin/python3", "Python with torch for --torch-reference")
	return cmd
}
