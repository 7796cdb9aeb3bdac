package main

import (
	"github.com/spf13/cobra"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/session"
)

func init() { register(newRunCmd) }

// runOptions are the flags of `whorl run`: the jobs' settings and where
// they run.
type runOptions struct {
	s                     session.Settings
	out                   string
	workers, coordinators int
	local                 bool
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the whole experiment (split, baseline, rotation pretraining, fine-tune, report) on a local cluster",
		Long: `run does the seven steps of the RotNet experiment: it splits the photos (seeded,
stratified), trains a supervised baseline on the 10% labeled subset, pretrains the
network on the rotation task over all training photos, fine-tunes it on the same
labeled subset with the same budget, evaluates both on the test split and writes
report.json, report.md, curves.png, confusion.png, the checkpoints and the split
manifest to --out.

Rerunning with the same --out and seed resumes from the last checkpoint.
--seeds 1,2,3 runs the experiment once per split seed, each seed a job of one
local cluster (its state in --out/cluster) with its run in --out/seed-N (an
interrupted sweep resumes; finished seeds are not redone), and
writes the aggregate report.json and report.md to --out: mean ± sample sd of
every accuracy, the paired gain per seed with its 95% t-interval, and the
per-block probe table.
--modes pretrain-finetune,joint runs the sweep (or the one seed) in each training
mode, in --out/MODE, and writes to --out the comparison: each mode's gain over the
same baselines and the paired difference between the modes with its t-interval.
--job-config takes a JSON experiment configuration (see report.json's "config")
that replaces the preset. What the file sets wins over a flag's default; an
explicit --seed, --data, --preset, --model, --stem, --size or --mode that differs from
the file is refused; what the file leaves out (seed, data.dir) comes from the
flags. --model, --stem and --size replace the preset's network and input size,
--mode its training mode.`,
		Example: `  whorl run                                  # embedded photos, quick preset
  whorl run --data ../shared/data/flowers --seed 2 --out runs/s2
  whorl run --seeds 1,2,3 --out runs/sweep        # aggregate in runs/sweep/report.md
  whorl run --preset paper --workers 4
  whorl run --data ../shared/data/flowers --model resnet18 --size 64
  whorl run --job-config job.json --out runs/custom`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.s.Changed = cmd.Flags().Changed
			wh := session.Where{Out: o.out, Local: o.local, Coordinators: o.coordinators, Workers: o.workers}
			return session.Run(cmd.Context(), cmd.OutOrStdout(), wh, o.s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.s.Data, "data", "", `image folder with one sub-folder per class ("" = the embedded CC-BY photos)`)
	f.StringVar(&o.out, "out", "whorl-out", "output folder (report, plots, checkpoints, manifest)")
	cliflag.Enum(f, &o.s.Preset, "preset", job.PresetQuick, job.Presets(), "experiment preset")
	f.StringVar(&o.s.JobFile, "job-config", "", "JSON experiment configuration replacing the preset")
	cliflag.IntRange(f, &o.workers, "workers", 2, 1, 64, "pretraining workers")
	cliflag.IntRange(f, &o.coordinators, "coordinators", 1, 1, 7, "raft coordinators")
	f.BoolVar(&o.local, "local", false, "pretrain in this process without a cluster (the single-process reference)")
	cliflag.IntRange(f, &o.s.Seed, "seed", 1, 0, 1<<31-1, "seed of the split, initialisation, data order and augmentation")
	f.StringSliceVar(&o.s.Modes, "modes", nil, "run every training mode given (pretrain-finetune,joint) over --seeds (or --seed), each in --out/MODE, and write their comparison (paired by seed) to --out")
	f.IntSliceVar(&o.s.Seeds, "seeds", nil, "run once per seed (1,2,3), each in --out/seed-N, and write the aggregate report (mean ± sd, the paired gain's 95% t-interval) to --out")
	f.StringVar(&o.s.Model, "model", "", `network: small, nin3, nin4, resnet18, resnet34 or resnet50 ("" = the preset's)`)
	f.StringVar(&o.s.Stem, "stem", "", `a ResNet's stem: imagenet or small ("" = imagenet)`)
	f.IntVar(&o.s.Size, "size", 0, "training image side in pixels (0 = the preset's; ResNets take 32..224)")
	cliflag.Enum(f, &o.s.Mode, "mode", "", []string{job.ModePretrainFinetune, job.ModeJoint},
		"training mode (default the preset's): rotation pretraining then fine-tuning, or joint (S4L: every rotation step adds a labeled batch's loss; job.DefaultJoint's recipe unless the job file sets one)")
	return cmd
}
