package experiment

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/whorl-ml/whorl/job"
	"gonum.org/v1/gonum/stat/distuv"
)

// Stat summarises one figure over seeds: the mean and the sample standard
// deviation (n-1; 0 for one seed) of Values, in seed order.
type Stat struct {
	Mean   float64   `json:"mean"`
	Std    float64   `json:"std"`
	Values []float64 `json:"values"`
}

// newStat summarises values.
func newStat(values []float64) Stat {
	s := Stat{Values: values}
	s.Mean, s.Std = MeanStd(values)
	return s
}

// Interval is a two-sided confidence interval.
type Interval struct {
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	Level float64 `json:"level"`
}

// tInterval is the level two-sided Student-t interval of the mean of s; ok
// is false below two values.
func tInterval(s Stat, level float64) (Interval, bool) {
	n := len(s.Values)
	if n < 2 {
		return Interval{}, false
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(0.5 + level/2)
	half := t * s.Std / math.Sqrt(float64(n))
	return Interval{Low: s.Mean - half, High: s.Mean + half, Level: level}, true
}

// SeedRun is one seed's headline figures and where its report is.
type SeedRun struct {
	Seed     uint64  `json:"seed"`
	Dir      string  `json:"dir"`
	Baseline float64 `json:"baseline_test_accuracy"`
	Finetune float64 `json:"finetune_test_accuracy"`
	Gain     float64 `json:"gain"`
	Rotation float64 `json:"test_rotation_accuracy"`
	Seconds  float64 `json:"total_seconds"`
}

// Summary is a sweep's aggregate report.json: every accuracy as mean ± sample
// standard deviation over the seeds, the paired gain's 95% t-interval and
// the per-block frozen-feature table.
type Summary struct {
	Preset string `json:"preset"`
	// Mode is the training mode (job.ModePretrainFinetune or ModeJoint).
	Mode      string    `json:"mode"`
	Model     string    `json:"model"`
	ImageSize int       `json:"image_size"`
	Source    string    `json:"source"`
	Seeds     []uint64  `json:"seeds"`
	Runs      []SeedRun `json:"runs"`
	// Baseline and Finetune are test accuracies; Gain is the paired
	// difference per seed (fine-tuned minus baseline of the same split).
	Baseline           Stat `json:"baseline_test_accuracy"`
	Finetune           Stat `json:"finetune_test_accuracy"`
	Gain               Stat `json:"gain"`
	BaselineValidation Stat `json:"baseline_validation_accuracy"`
	FinetuneValidation Stat `json:"finetune_validation_accuracy"`
	Rotation           Stat `json:"test_rotation_accuracy"`
	Seconds            Stat `json:"total_seconds"`
	// GainCI is the 95% t-interval of the mean paired gain (absent for one
	// seed).
	GainCI *Interval       `json:"gain_ci95,omitempty"`
	Frozen []FrozenSummary `json:"frozen,omitempty"`
	// SelfTrained is both arms after self-training (absent when the runs
	// did not self-train).
	SelfTrained *SelfTrainSummary `json:"self_trained,omitempty"`
}

// SelfTrainSummary is both arms' test accuracy after self-training over
// the seeds, and their paired gain.
type SelfTrainSummary struct {
	Baseline Stat      `json:"baseline_test_accuracy"`
	Finetune Stat      `json:"finetune_test_accuracy"`
	Gain     Stat      `json:"gain"`
	GainCI   *Interval `json:"gain_ci95,omitempty"`
}

// FrozenSummary is one network's frozen-feature test accuracies per block
// over the seeds.
type FrozenSummary struct {
	Network string         `json:"network"`
	Blocks  []BlockSummary `json:"blocks"`
}

// BlockSummary is one block's probe and kNN test accuracy over the seeds.
type BlockSummary struct {
	Block int   `json:"block"`
	Dim   int   `json:"dim"`
	Probe *Stat `json:"linear_probe,omitempty"`
	KNN   *Stat `json:"knn,omitempty"`
}

// ErrMixedSweep is returned when the reports of a sweep do not share one
// protocol (preset, network, size, data).
var ErrMixedSweep = errors.New("the reports are of different experiments")

// Aggregate summarises the reports of one experiment run at several seeds;
// dirs[i] is where reps[i] is (for the table).
func Aggregate(reps []Report, dirs []string) (Summary, error) {
	if len(reps) == 0 {
		return Summary{}, errors.New("aggregate: no reports")
	}
	r0 := reps[0]
	s := Summary{Preset: r0.Preset, Mode: reportMode(r0), Model: r0.Model, ImageSize: r0.Dataset.ImageSize, Source: r0.Dataset.Source}
	cols := make([][]float64, 7)
	for i, r := range reps {
		if r.Preset != r0.Preset || r.Model != r0.Model || r.Dataset.ImageSize != r0.Dataset.ImageSize || r.Dataset.Source != r0.Dataset.Source ||
			reportMode(r) != s.Mode {
			return Summary{}, fmt.Errorf("aggregate: %w: seed %d is %s %s %s at %d px on %s, seed %d %s %s %s at %d px on %s", ErrMixedSweep,
				r.Seed, r.Preset, reportMode(r), r.Model, r.Dataset.ImageSize, r.Dataset.Source,
				r0.Seed, r0.Preset, s.Mode, r0.Model, r0.Dataset.ImageSize, r0.Dataset.Source)
		}
		if (r.SelfTraining != nil) != (r0.SelfTraining != nil) {
			return Summary{}, fmt.Errorf("aggregate: %w: seed %d self-trained: %v, seed %d: %v", ErrMixedSweep,
				r.Seed, r.SelfTraining != nil, r0.Seed, r0.SelfTraining != nil)
		}
		s.Seeds = append(s.Seeds, r.Seed)
		s.Runs = append(s.Runs, SeedRun{Seed: r.Seed, Dir: dirs[i], Baseline: r.Baseline.TestAccuracy, Finetune: r.Finetune.TestAccuracy,
			Gain: r.Gain, Rotation: r.Pretext.TestRotationAccuracy, Seconds: r.Timing.TotalSeconds})
		for j, v := range []float64{r.Baseline.TestAccuracy, r.Finetune.TestAccuracy, r.Gain, r.Baseline.ValidationAccuracy,
			r.Finetune.ValidationAccuracy, r.Pretext.TestRotationAccuracy, r.Timing.TotalSeconds} {
			cols[j] = append(cols[j], v)
		}
	}
	s.Baseline, s.Finetune, s.Gain = newStat(cols[0]), newStat(cols[1]), newStat(cols[2])
	s.BaselineValidation, s.FinetuneValidation = newStat(cols[3]), newStat(cols[4])
	s.Rotation, s.Seconds = newStat(cols[5]), newStat(cols[6])
	if ci, ok := tInterval(s.Gain, 0.95); ok {
		s.GainCI = &ci
	}
	s.Frozen = aggregateFrozen(reps)
	s.SelfTrained = aggregateSelfTraining(reps)
	return s, nil
}

// aggregateSelfTraining summarises the self-trained arms of reports that
// all self-trained (nil otherwise).
func aggregateSelfTraining(reps []Report) *SelfTrainSummary {
	var base, ft, gain []float64
	for _, r := range reps {
		if r.SelfTraining == nil {
			return nil
		}
		base, ft = append(base, r.SelfTraining.Baseline.Result.TestAccuracy), append(ft, r.SelfTraining.Finetune.Result.TestAccuracy)
		gain = append(gain, r.SelfTraining.Gain)
	}
	st := &SelfTrainSummary{Baseline: newStat(base), Finetune: newStat(ft), Gain: newStat(gain)}
	if ci, ok := tInterval(st.Gain, 0.95); ok {
		st.GainCI = &ci
	}
	return st
}

// reportMode is the training mode of a report's job ("" read as the
// default, pretrain-finetune).
func reportMode(r Report) string {
	if r.Config.Mode == "" {
		return job.ModePretrainFinetune
	}
	return r.Config.Mode
}

// aggregateFrozen summarises the frozen-feature evaluations every report
// has, network by network and block by block.
func aggregateFrozen(reps []Report) []FrozenSummary {
	var out []FrozenSummary
	for ni, f0 := range reps[0].Frozen {
		fs := FrozenSummary{Network: f0.Network}
		for bi, b0 := range f0.Blocks {
			var probe, knn []float64
			for _, r := range reps {
				if ni >= len(r.Frozen) || r.Frozen[ni].Network != f0.Network || bi >= len(r.Frozen[ni].Blocks) {
					return nil // reports that disagree on what was evaluated: no table
				}
				b := r.Frozen[ni].Blocks[bi]
				if b.Probe != nil {
					probe = append(probe, b.Probe.TestAccuracy)
				}
				if b.KNN != nil {
					knn = append(knn, b.KNN.TestAccuracy)
				}
			}
			bs := BlockSummary{Block: b0.Block, Dim: b0.Dim}
			if len(probe) == len(reps) {
				st := newStat(probe)
				bs.Probe = &st
			}
			if len(knn) == len(reps) {
				st := newStat(knn)
				bs.KNN = &st
			}
			fs.Blocks = append(fs.Blocks, bs)
		}
		out = append(out, fs)
	}
	return out
}

// WriteSummary writes the sweep's report.json and report.md to dir.
func WriteSummary(dir string, s Summary) error {
	if err := writeJSON(dir, FileReport, s); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, FileReportMD), []byte(RenderSummary(s)))
}

// pm formats a Stat of fractions as "mean ± std" in percent.
func pm(s Stat) string { return fmt.Sprintf("%.1f ± %.1f", 100*s.Mean, 100*s.Std) }

// RenderSummary renders a sweep's report.md.
func RenderSummary(s Summary) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	what, title := "fine-tuned", "rotation pretraining"
	if s.Mode == job.ModeJoint {
		what, title = "joint", "joint training (S4L)"
	}
	p("# whorl run over %d seeds: %s vs. supervised baseline\n\n", len(s.Seeds), title)
	p("Preset `%s`, network `%s` at %d px, data %s, split seeds %v; each seed's own report is in its folder.\n\n",
		s.Preset, s.Model, s.ImageSize, s.Source, s.Seeds)
	p("| seed | baseline | %s | gain | rotation | seconds | report |\n|---|---|---|---|---|---|---|\n", what)
	for _, r := range s.Runs {
		p("| %d | %.1f | %.1f | %+.1f | %.1f | %.0f | `%s` |\n", r.Seed, 100*r.Baseline, 100*r.Finetune, 100*r.Gain,
			100*r.Rotation, r.Seconds, filepath.Join(r.Dir, FileReportMD))
	}
	p("| **mean ± sd** | **%s** | **%s** | **%+.1f ± %.1f** | %s | %.0f | |\n\n", pm(s.Baseline), pm(s.Finetune),
		100*s.Gain.Mean, 100*s.Gain.Std, pm(s.Rotation), s.Seconds.Mean)
	if s.GainCI != nil {
		p("Paired gain (%s minus baseline on the same split): %+.1f points, 95%% t-interval [%+.1f, %+.1f] (%d seeds, t with %d degrees of freedom).\n\n", what,
			100*s.Gain.Mean, 100*s.GainCI.Low, 100*s.GainCI.High, len(s.Seeds), len(s.Seeds)-1)
	}
	p("Validation accuracy (the labeled images held out for choices): baseline %s, %s %s.\n\n",
		pm(s.BaselineValidation), what, pm(s.FinetuneValidation))
	if st := s.SelfTrained; st != nil {
		p("With self-training in both arms (report.md of each seed has the pseudo-labels): baseline %s, %s %s, paired gain %+.1f ± %.1f points",
			pm(st.Baseline), what, pm(st.Finetune), 100*st.Gain.Mean, 100*st.Gain.Std)
		if st.GainCI != nil {
			p(", 95%% t-interval [%+.1f, %+.1f]", 100*st.GainCI.Low, 100*st.GainCI.High)
		}
		p(".\n\n")
	}
	renderFrozenSummary(&b, s.Frozen)
	return b.String()
}

// renderFrozenSummary renders the per-block probe and kNN table, mean ± sd.
func renderFrozenSummary(b *strings.Builder, fs []FrozenSummary) {
	if len(fs) == 0 || len(fs[0].Blocks) == 0 {
		return
	}
	b.WriteString("## Frozen features, block by block (test accuracy, mean ± sd)\n\n")
	renderFrozenTable(b, fs, pm)
}

// renderFrozenTable renders one row per block and one column per (probe or
// kNN, network), each cell formatted by cell.
func renderFrozenTable(b *strings.Builder, fs []FrozenSummary, cell func(Stat) string) {
	if len(fs) == 0 || len(fs[0].Blocks) == 0 {
		return
	}
	pick := []func(BlockSummary) *Stat{
		func(v BlockSummary) *Stat { return v.Probe },
		func(v BlockSummary) *Stat { return v.KNN },
	}
	b.WriteString("| block (features) |")
	cols := 0
	for k, name := range []string{"probe", "kNN"} {
		for _, f := range fs {
			if pick[k](f.Blocks[0]) != nil {
				fmt.Fprintf(b, " %s: %s |", name, f.Network)
				cols++
			}
		}
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", cols) + "\n")
	for bi, blk := range fs[0].Blocks {
		fmt.Fprintf(b, "| %d (%d) |", blk.Block, blk.Dim)
		for k := range pick {
			for _, f := range fs {
				if bi < len(f.Blocks) {
					if v := pick[k](f.Blocks[bi]); v != nil {
						fmt.Fprintf(b, " %s |", cell(*v))
					}
				}
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}
