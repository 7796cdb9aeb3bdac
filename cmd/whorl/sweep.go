package main

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/whorl-ml/whorl/job"
)

// checkSeeds refuses --seeds together with --seed or a job file's seed, a
// repeated seed and one out of range.
func (o runOptions) checkSeeds() error {
	if o.changed != nil && o.changed("seed") {
		return errors.New("--seed and --seeds: give one (--seeds 1,2,3 runs every seed)")
	}
	for i, s := range o.seeds {
		if s < 0 || s > 1<<31-1 {
			return fmt.Errorf("--seeds: %d is out of range 0..%d", s, 1<<31-1)
		}
		if slices.Contains(o.seeds[:i], s) {
			return fmt.Errorf("--seeds: %d is given twice", s)
		}
	}
	if o.job == "" {
		return nil
	}
	b, err := os.ReadFile(o.job)
	if err != nil {
		return fmt.Errorf("read --job-config: %w", err)
	}
	if set, err := job.SetKeys(b); err == nil && set["seed"] {
		return fmt.Errorf("--seeds and seed in --job-config %s: drop the key, the sweep sets the seed", o.job)
	}
	return nil
}

// checkModes refuses --modes with --mode or a job file's mode, an unknown
// or repeated mode.
func (o runOptions) checkModes() error {
	if o.mode != "" {
		return errors.New("--mode and --modes: give one (--modes runs each mode given)")
	}
	for i, m := range o.modes {
		if m != job.ModePretrainFinetune && m != job.ModeJoint {
			return fmt.Errorf("--modes: %q is not a mode; choose from %s, %s", m, job.ModePretrainFinetune, job.ModeJoint)
		}
		if slices.Contains(o.modes[:i], m) {
			return fmt.Errorf("--modes: %s is given twice", m)
		}
	}
	if o.job == "" {
		return nil
	}
	b, err := os.ReadFile(o.job)
	if err != nil {
		return fmt.Errorf("read --job-config: %w", err)
	}
	if set, err := job.SetKeys(b); err == nil && set["mode"] {
		return fmt.Errorf("--modes and mode in --job-config %s: drop the key, --modes sets the mode", o.job)
	}
	return nil
}
