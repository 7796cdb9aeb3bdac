package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/session"
)

func init() { register(newRunCmd) }

// runOptions are the flags of `whorl run`.
type runOptions struct {
	data, out, preset, job string
	model, stem, mode      string
	workers, coordinators  int
	seed, size             int
	seeds                  []int
	modes                  []string
	local                  bool
	// changed reports whether a flag was given (command line, environment
	// or config file) rather than left at its default.
	changed func(name string) bool
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
			o.changed = cmd.Flags().Changed
			if len(o.modes) > 0 {
				return runModes(cmd.Context(), cmd.OutOrStdout(), o)
			}
			if len(o.seeds) > 0 {
				return runSweep(cmd.Context(), cmd.OutOrStdout(), o)
			}
			return runExperiment(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", `image folder with one sub-folder per class ("" = the embedded CC-BY photos)`)
	f.StringVar(&o.out, "out", "whorl-out", "output folder (report, plots, checkpoints, manifest)")
	cliflag.Enum(f, &o.preset, "preset", job.PresetQuick, job.Presets(), "experiment preset")
	f.StringVar(&o.job, "job-config", "", "JSON experiment configuration replacing the preset")
	cliflag.IntRange(f, &o.workers, "workers", 2, 1, 64, "pretraining workers")
	cliflag.IntRange(f, &o.coordinators, "coordinators", 1, 1, 7, "raft coordinators")
	f.BoolVar(&o.local, "local", false, "pretrain in this process without a cluster (the single-process reference)")
	cliflag.IntRange(f, &o.seed, "seed", 1, 0, 1<<31-1, "seed of the split, initialisation, data order and augmentation")
	f.StringSliceVar(&o.modes, "modes", nil, "run every training mode given (pretrain-finetune,joint) over --seeds (or --seed), each in --out/MODE, and write their comparison (paired by seed) to --out")
	f.IntSliceVar(&o.seeds, "seeds", nil, "run once per seed (1,2,3), each in --out/seed-N, and write the aggregate report (mean ± sd, the paired gain's 95% t-interval) to --out")
	f.StringVar(&o.model, "model", "", `network: small, nin3, nin4, resnet18, resnet34 or resnet50 ("" = the preset's)`)
	f.StringVar(&o.stem, "stem", "", `a ResNet's stem: imagenet or small ("" = imagenet)`)
	f.IntVar(&o.size, "size", 0, "training image side in pixels (0 = the preset's; ResNets take 32..224)")
	cliflag.Enum(f, &o.mode, "mode", "", []string{job.ModePretrainFinetune, job.ModeJoint},
		"training mode (default the preset's): rotation pretraining then fine-tuning, or joint (S4L: every rotation step adds a labeled batch's loss; job.DefaultJoint's recipe unless the job file sets one)")
	return cmd
}

// jobConfig builds the experiment configuration from the flags and
// --job-config. A value the job file sets wins over a flag's default; a flag
// given explicitly (--seed, --data, --preset) that differs from the file's
// value is refused, naming both; a value the file leaves out comes from the
// flag.
func (o runOptions) jobConfig() (job.Config, error) {
	if o.job == "" {
		c, err := job.Preset(o.preset)
		if err != nil {
			return c, err
		}
		if o.data != "" {
			c.Data.Dir = o.data
		}
		c.Seed = uint64(o.seed)
		o.applyNetwork(&c)
		return c, c.Validate()
	}
	b, err := os.ReadFile(o.job)
	if err != nil {
		return job.Config{}, fmt.Errorf("read --job-config: %w", err)
	}
	c, err := job.Parse(b)
	if err != nil {
		return c, fmt.Errorf("--job-config %s: %w", o.job, err)
	}
	set, err := job.SetKeys(b)
	if err != nil {
		return c, fmt.Errorf("--job-config %s: %w", o.job, err)
	}
	if err := o.mergeFlags(&c, set); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// mergeFlags applies --seed, --data and --preset to c read from the job
// file whose set keys are set.
func (o runOptions) mergeFlags(c *job.Config, set map[string]bool) error {
	changed := o.changed
	if changed == nil {
		changed = func(string) bool { return false }
	}
	var errs []error
	conflict := func(flag string, fv any, key string, jv any) {
		errs = append(errs, fmt.Errorf("--%s %v and %s %v in --job-config %s differ: give the value once (drop the flag or the key)",
			flag, fv, key, jv, o.job))
	}
	switch {
	case !set["seed"]:
		c.Seed = uint64(o.seed)
	case changed("seed") && uint64(o.seed) != c.Seed:
		conflict("seed", o.seed, "seed", c.Seed)
	}
	switch {
	case !set["data.dir"]:
		c.Data.Dir = o.data
	case changed("data") && o.data != c.Data.Dir:
		conflict("data", fmt.Sprintf("%q", o.data), "data.dir", fmt.Sprintf("%q", c.Data.Dir))
	}
	if changed("preset") && set["preset"] && o.preset != c.Preset {
		conflict("preset", o.preset, "preset", c.Preset)
	}
	for _, k := range []struct {
		flag, key string
		fv, jv    any
	}{{"model", "model.name", o.model, c.Model.Name}, {"stem", "model.stem", o.stem, c.Model.Stem},
		{"size", "data.image_size", o.size, c.Data.ImageSize}, {"mode", "mode", o.mode, c.Mode}} {
		if changed(k.flag) && set[k.key] && k.fv != k.jv {
			conflict(k.flag, k.fv, k.key, k.jv)
		}
	}
	o.applyNetwork(c)
	return errors.Join(errs...)
}

// applyNetwork sets the network and input size the flags give.
func (o runOptions) applyNetwork(c *job.Config) {
	if o.model != "" {
		c.Model.Name = o.model
	}
	if o.stem != "" {
		c.Model.Stem = o.stem
	}
	if o.size != 0 {
		c.Data.ImageSize = o.size
	}
	if o.mode != "" && o.mode != c.Mode {
		c.Mode = o.mode
		switch {
		case !c.IsJoint():
			c.Joint = job.JointConfig{} // a job file's joint recipe is for the joint mode only
		case c.Joint == (job.JointConfig{}):
			c.Joint = job.DefaultJoint(*c)
		}
	}
}

// where is where the flags say the run trains.
func (o runOptions) where() session.Where {
	return session.Where{Out: o.out, Local: o.local, Coordinators: o.coordinators, Workers: o.workers}
}

// runExperiment runs the job the flags give and prints the outcome.
func runExperiment(ctx context.Context, w io.Writer, o runOptions) error {
	c, err := o.jobConfig()
	if err != nil {
		return err
	}
	return session.RunJob(ctx, w, o.where(), c)
}

// runSweep runs the job once per seed of --seeds (session.Sweep).
func runSweep(ctx context.Context, w io.Writer, o runOptions) error {
	if err := o.checkSeeds(); err != nil {
		return err
	}
	var configs []job.Config
	for _, s := range o.seeds {
		one := o
		one.seeds, one.seed = nil, s
		c, err := one.jobConfig()
		if err != nil {
			return err
		}
		configs = append(configs, c)
	}
	return session.Sweep(ctx, w, o.where(), configs)
}

// runModes runs the sweep (or the one seed) once per training mode of
// --modes, each in --out/MODE, then writes the modes' comparison to --out.
func runModes(ctx context.Context, w io.Writer, o runOptions) error {
	if err := o.checkModes(); err != nil {
		return err
	}
	if len(o.seeds) == 0 { // one seed: a sweep of it (--seed is then not a conflict)
		o.seeds = []int{o.seed}
		if prev := o.changed; prev != nil {
			o.changed = func(name string) bool { return name != "seed" && prev(name) }
		}
	}
	for _, m := range o.modes {
		one := o
		one.modes, one.mode, one.out = nil, m, filepath.Join(o.out, m)
		fmt.Fprintf(w, "\n=== mode %s: %s\n", m, one.out)
		if err := runSweep(ctx, w, one); err != nil {
			return fmt.Errorf("mode %s: %w", m, err)
		}
	}
	return session.CompareModes(w, o.out, o.modes)
}
