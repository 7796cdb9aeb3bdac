package experiment

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Comparison is a sweep over training modes (`whorl run --seeds 1,2,3
// --modes pretrain-finetune,joint`): each mode's aggregate over the same
// seeds, and each later mode's paired difference from the first one (its
// classifier's test accuracy minus the first mode's, seed by seed: the
// baselines are the same runs' and the splits the same).
type Comparison struct {
	Modes       []Summary    `json:"modes"`
	Differences []ModeChange `json:"differences,omitempty"`
}

// ModeChange is one mode's paired test-accuracy difference from the first
// mode, with its 95% t-interval (absent for one seed).
type ModeChange struct {
	Mode       string    `json:"mode"`
	From       string    `json:"from"`
	Difference Stat      `json:"difference"`
	CI         *Interval `json:"ci95,omitempty"`
}

// ErrUnpairedModes is returned when the modes of a comparison did not run
// the same seeds, so their results cannot be paired.
var ErrUnpairedModes = errors.New("the modes ran different seeds")

// CompareModes compares the aggregates of one experiment in several modes,
// the first being the reference.
func CompareModes(sums []Summary) (Comparison, error) {
	if len(sums) == 0 {
		return Comparison{}, errors.New("compare modes: no summaries")
	}
	c := Comparison{Modes: sums}
	ref := sums[0]
	for _, s := range sums[1:] {
		if !slices.Equal(s.Seeds, ref.Seeds) {
			return Comparison{}, fmt.Errorf("compare modes: %w: %s ran seeds %v, %s %v", ErrUnpairedModes, s.Mode, s.Seeds, ref.Mode, ref.Seeds)
		}
		if s.Preset != ref.Preset || s.Model != ref.Model || s.ImageSize != ref.ImageSize || s.Source != ref.Source {
			return Comparison{}, fmt.Errorf("compare modes: %w: %s is %s %s at %d px on %s, %s %s %s at %d px on %s", ErrMixedSweep,
				s.Mode, s.Preset, s.Model, s.ImageSize, s.Source, ref.Mode, ref.Preset, ref.Model, ref.ImageSize, ref.Source)
		}
		diff := make([]float64, len(s.Runs))
		for i := range s.Runs {
			diff[i] = s.Runs[i].Finetune - ref.Runs[i].Finetune
		}
		mc := ModeChange{Mode: s.Mode, From: ref.Mode, Difference: newStat(diff)}
		if ci, ok := tInterval(mc.Difference, 0.95); ok {
			mc.CI = &ci
		}
		c.Differences = append(c.Differences, mc)
	}
	return c, nil
}

// WriteComparison writes the comparison's report.json and report.md to dir.
func WriteComparison(dir string, c Comparison) error {
	if err := writeJSON(dir, FileReport, c); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, FileReportMD), []byte(RenderComparison(c)))
}

// RenderComparison renders a mode comparison's report.md.
func RenderComparison(c Comparison) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	s0 := c.Modes[0]
	p("# whorl run: training modes compared over %d seeds\n\n", len(s0.Seeds))
	p("Preset `%s`, network `%s` at %d px, data %s, split seeds %v; each mode's aggregate report is in its folder.\n\n",
		s0.Preset, s0.Model, s0.ImageSize, s0.Source, s0.Seeds)
	p("| mode | baseline | classifier | gain over the baseline | 95%% t-interval of the gain | rotation | seconds per seed | report |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range c.Modes {
		ci := ""
		if s.GainCI != nil {
			ci = fmt.Sprintf("[%+.1f, %+.1f]", 100*s.GainCI.Low, 100*s.GainCI.High)
		}
		p("| `%s` | %s | %s | %+.1f ± %.1f | %s | %s | %.0f | `%s` |\n", s.Mode, pm(s.Baseline), pm(s.Finetune),
			100*s.Gain.Mean, 100*s.Gain.Std, ci, pm(s.Rotation), s.Seconds.Mean, filepath.Join(s.Mode, FileReportMD))
	}
	p("\n")
	for _, d := range c.Differences {
		p("`%s` minus `%s`, paired by seed: %+.1f ± %.1f points", d.Mode, d.From, 100*d.Difference.Mean, 100*d.Difference.Std)
		if d.CI != nil {
			p(" (95%% t-interval [%+.1f, %+.1f])", 100*d.CI.Low, 100*d.CI.High)
		}
		p(".\n\n")
	}
	p("Accuracies are on test, in %%, mean ± sample sd over the seeds; the baselines of all modes are the same recipe on the same splits.\n")
	return b.String()
}
