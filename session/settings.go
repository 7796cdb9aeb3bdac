package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/whorl-ml/whorl/job"
)

// Settings are `whorl run`'s settings of its jobs as its flags give them
// (their errors name the flags): the preset, or a job file (JobFile) that
// replaces it, overlaid with the data folder, the seed, the network, the
// input size and the training mode; Seeds makes a sweep, Modes a
// comparison of training modes.
type Settings struct {
	Data, Preset, JobFile string
	Model, Stem, Mode     string
	Seed, Size            int
	Seeds                 []int
	Modes                 []string
	// Changed reports whether the setting of a flag (by its name) was
	// given (command line, environment or config file) rather than left at
	// its default; nil: none was.
	Changed func(name string) bool
}

// Run runs the jobs s gives in wh (`whorl run`): each mode of s.Modes
// over s.Seeds (or s.Seed) in wh.Out/MODE, then their comparison
// (CompareModes); else a sweep of s.Seeds (Sweep); else one job (RunJob).
func Run(ctx context.Context, w io.Writer, wh Where, s Settings) error {
	if len(s.Modes) > 0 {
		return runModes(ctx, w, wh, s)
	}
	if len(s.Seeds) > 0 {
		return runSweep(ctx, w, wh, s)
	}
	c, err := s.JobConfig()
	if err != nil {
		return err
	}
	return RunJob(ctx, w, wh, c)
}

// runSweep runs the job once per seed of s.Seeds (Sweep).
func runSweep(ctx context.Context, w io.Writer, wh Where, s Settings) error {
	if err := s.checkSeeds(); err != nil {
		return err
	}
	var configs []job.Config
	for _, seed := range s.Seeds {
		one := s
		one.Seeds, one.Seed = nil, seed
		c, err := one.JobConfig()
		if err != nil {
			return err
		}
		configs = append(configs, c)
	}
	return Sweep(ctx, w, wh, configs)
}

// runModes runs the sweep (or the one seed) once per training mode of
// s.Modes, each in wh.Out/MODE, then writes the modes' comparison to wh.Out.
func runModes(ctx context.Context, w io.Writer, wh Where, s Settings) error {
	if err := s.checkModes(); err != nil {
		return err
	}
	if len(s.Seeds) == 0 { // one seed: a sweep of it (--seed is then not a conflict)
		s.Seeds = []int{s.Seed}
		if prev := s.Changed; prev != nil {
			s.Changed = func(name string) bool { return name != "seed" && prev(name) }
		}
	}
	for _, m := range s.Modes {
		one, in := s, wh
		one.Modes, one.Mode, in.Out = nil, m, filepath.Join(wh.Out, m)
		fmt.Fprintf(w, "\n=== mode %s: %s\n", m, in.Out)
		if err := runSweep(ctx, w, in, one); err != nil {
			return fmt.Errorf("mode %s: %w", m, err)
		}
	}
	return CompareModes(w, wh.Out, s.Modes)
}

// JobConfig builds the experiment configuration from the flags and
// --job-config. A value the job file sets wins over a flag's default; a flag
// given explicitly (--seed, --data, --preset) that differs from the file's
// value is refused, naming both; a value the file leaves out comes from the
// flag.
func (s Settings) JobConfig() (job.Config, error) {
	if s.JobFile == "" {
		c, err := job.Preset(s.Preset)
		if err != nil {
			return c, err
		}
		if s.Data != "" {
			c.Data.Dir = s.Data
		}
		c.Seed = uint64(s.Seed)
		s.applyNetwork(&c)
		return c, c.Validate()
	}
	b, err := os.ReadFile(s.JobFile)
	if err != nil {
		return job.Config{}, fmt.Errorf("read --job-config: %w", err)
	}
	c, err := job.Parse(b)
	if err != nil {
		return c, fmt.Errorf("--job-config %s: %w", s.JobFile, err)
	}
	set, err := job.SetKeys(b)
	if err != nil {
		return c, fmt.Errorf("--job-config %s: %w", s.JobFile, err)
	}
	if err := s.mergeFlags(&c, set); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// mergeFlags applies --seed, --data and --preset to c read from the job
// file whose set keys are set.
func (s Settings) mergeFlags(c *job.Config, set map[string]bool) error {
	changed := s.Changed
	if changed == nil {
		changed = func(string) bool { return false }
	}
	var errs []error
	conflict := func(flag string, fv any, key string, jv any) {
		errs = append(errs, fmt.Errorf("--%s %v and %s %v in --job-config %s differ: give the value once (drop the flag or the key)",
			flag, fv, key, jv, s.JobFile))
	}
	switch {
	case !set["seed"]:
		c.Seed = uint64(s.Seed)
	case changed("seed") && uint64(s.Seed) != c.Seed:
		conflict("seed", s.Seed, "seed", c.Seed)
	}
	switch {
	case !set["data.dir"]:
		c.Data.Dir = s.Data
	case changed("data") && s.Data != c.Data.Dir:
		conflict("data", fmt.Sprintf("%q", s.Data), "data.dir", fmt.Sprintf("%q", c.Data.Dir))
	}
	if changed("preset") && set["preset"] && s.Preset != c.Preset {
		conflict("preset", s.Preset, "preset", c.Preset)
	}
	for _, k := range []struct {
		flag, key string
		fv, jv    any
	}{{"model", "model.name", s.Model, c.Model.Name}, {"stem", "model.stem", s.Stem, c.Model.Stem},
		{"size", "data.image_size", s.Size, c.Data.ImageSize}, {"mode", "mode", s.Mode, c.Mode}} {
		if changed(k.flag) && set[k.key] && k.fv != k.jv {
			conflict(k.flag, k.fv, k.key, k.jv)
		}
	}
	s.applyNetwork(c)
	return errors.Join(errs...)
}

// applyNetwork sets the network and input size the flags give.
func (s Settings) applyNetwork(c *job.Config) {
	if s.Model != "" {
		c.Model.Name = s.Model
	}
	if s.Stem != "" {
		c.Model.Stem = s.Stem
	}
	if s.Size != 0 {
		c.Data.ImageSize = s.Size
	}
	if s.Mode != "" && s.Mode != c.Mode {
		c.Mode = s.Mode
		switch {
		case !c.IsJoint():
			c.Joint = job.JointConfig{} // a job file's joint recipe is for the joint mode only
		case c.Joint == (job.JointConfig{}):
			c.Joint = job.DefaultJoint(*c)
		}
	}
}

// checkSeeds refuses --seeds together with --seed or a job file's seed, a
// repeated seed and one out of range.
func (s Settings) checkSeeds() error {
	if s.Changed != nil && s.Changed("seed") {
		return errors.New("--seed and --seeds: give one (--seeds 1,2,3 runs every seed)")
	}
	for i, seed := range s.Seeds {
		if seed < 0 || seed > 1<<31-1 {
			return fmt.Errorf("--seeds: %d is out of range 0..%d", seed, 1<<31-1)
		}
		if slices.Contains(s.Seeds[:i], seed) {
			return fmt.Errorf("--seeds: %d is given twice", seed)
		}
	}
	if set, err := s.jobFileSets("seed"); err != nil || !set {
		return err
	}
	return fmt.Errorf("--seeds and seed in --job-config %s: drop the key, the sweep sets the seed", s.JobFile)
}

// checkModes refuses --modes with --mode or a job file's mode, an unknown
// or repeated mode.
func (s Settings) checkModes() error {
	if s.Mode != "" {
		return errors.New("--mode and --modes: give one (--modes runs each mode given)")
	}
	for i, m := range s.Modes {
		if m != job.ModePretrainFinetune && m != job.ModeJoint {
			return fmt.Errorf("--modes: %q is not a mode; choose from %s, %s", m, job.ModePretrainFinetune, job.ModeJoint)
		}
		if slices.Contains(s.Modes[:i], m) {
			return fmt.Errorf("--modes: %s is given twice", m)
		}
	}
	if set, err := s.jobFileSets("mode"); err != nil || !set {
		return err
	}
	return fmt.Errorf("--modes and mode in --job-config %s: drop the key, --modes sets the mode", s.JobFile)
}

// jobFileSets reports whether the --job-config file sets the top-level
// key (false without a file, or when the file does not parse: the job's
// own check names that).
func (s Settings) jobFileSets(key string) (bool, error) {
	if s.JobFile == "" {
		return false, nil
	}
	b, err := os.ReadFile(s.JobFile)
	if err != nil {
		return false, fmt.Errorf("read --job-config: %w", err)
	}
	set, err := job.SetKeys(b)
	return err == nil && set[key], nil
}
