package experiment

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/job"
)

// seedReport is sampleReport at another seed with the given test accuracies.
func seedReport(seed uint64, base, ft, probe float64) Report {
	r := sampleReport()
	r.Seed, r.Baseline.TestAccuracy, r.Finetune.TestAccuracy, r.Gain = seed, base, ft, ft-base
	r.Frozen[0].Blocks[0].Probe.TestAccuracy = probe
	return r
}

func TestAggregateKnownAnswer(t *testing.T) {
	reps := []Report{seedReport(1, 0.60, 0.62, 0.5), seedReport(2, 0.62, 0.66, 0.6), seedReport(3, 0.64, 0.70, 0.7)}
	s, err := Aggregate(reps, []string{"seed-1", "seed-2", "seed-3"})
	if err != nil {
		t.Fatal(err)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %.12g, want %.12g", name, got, want)
		}
	}
	near("baseline mean", s.Baseline.Mean, 0.62)
	near("baseline sd", s.Baseline.Std, 0.02)
	near("gain mean", s.Gain.Mean, 0.04)
	near("gain sd", s.Gain.Std, 0.02)
	// t(0.975, 2 df) = 4.302652729911275 (scipy.stats.t.ppf).
	half := 4.302652729911275 * 0.02 / math.Sqrt(3)
	if s.GainCI == nil {
		t.Fatal("no gain interval for 3 seeds")
	}
	near("gain CI low", s.GainCI.Low, 0.04-half)
	near("gain CI high", s.GainCI.High, 0.04+half)
	if len(s.Frozen) != 3 || s.Frozen[0].Network != NetPretrained || s.Frozen[0].Blocks[0].Probe == nil {
		t.Fatalf("frozen summary %+v", s.Frozen)
	}
	near("pretrained block 1 probe mean", s.Frozen[0].Blocks[0].Probe.Mean, 0.6)
	near("pretrained block 1 probe sd", s.Frozen[0].Blocks[0].Probe.Std, 0.1)
	md := RenderSummary(s)
	for _, want := range []string{
		"| 2 | 62.0 | 66.0 | +4.0 |",
		"| **mean ± sd** | **62.0 ± 2.0** | **66.0 ± 4.0** | **+4.0 ± 2.0** |",
		"95% t-interval [-1.0, +9.0]",
		"| 1 (16) | 60.0 ± 10.0 | 45.0 ± 0.0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

func TestAggregateRefusesMixedExperiments(t *testing.T) {
	a, b := seedReport(1, 0.6, 0.6, 0.5), seedReport(2, 0.6, 0.6, 0.5)
	b.Model = "nin4"
	if _, err := Aggregate([]Report{a, b}, []string{"a", "b"}); !errors.Is(err, ErrMixedSweep) || !strings.Contains(err.Error(), "nin4") {
		t.Errorf("Aggregate of small and nin4 = %v, want ErrMixedSweep naming nin4", err)
	}
	s, err := Aggregate([]Report{a}, []string{"a"})
	if err != nil || s.GainCI != nil || s.Gain.Std != 0 {
		t.Errorf("one seed: %v, interval %v, sd %g; want no interval", err, s.GainCI, s.Gain.Std)
	}
}

func TestAggregateSelfTraining(t *testing.T) {
	var reps []Report
	for i, acc := range [][2]float64{{0.60, 0.65}, {0.62, 0.70}, {0.64, 0.72}} {
		r := seedReport(uint64(i+1), 0.6, 0.6, 0.5)
		r.SelfTraining = &SelfTraining{Baseline: SelfTrainResult{Result: ModelResult{TestAccuracy: acc[0]}},
			Finetune: SelfTrainResult{Result: ModelResult{TestAccuracy: acc[1]}}, Gain: acc[1] - acc[0]}
		reps = append(reps, r)
	}
	s, err := Aggregate(reps, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	st := s.SelfTrained
	if st == nil || math.Abs(st.Baseline.Mean-0.62) > 1e-9 || math.Abs(st.Finetune.Mean-0.69) > 1e-9 ||
		math.Abs(st.Gain.Mean-0.07) > 1e-9 || st.GainCI == nil {
		t.Fatalf("self-trained summary %+v", st)
	}
	if md := RenderSummary(s); !strings.Contains(md, "With self-training in both arms") || !strings.Contains(md, "paired gain +7.0 ± 1.7 points") {
		t.Errorf("summary lacks the self-training line:\n%s", md)
	}
	reps[1].SelfTraining = nil
	if _, err := Aggregate(reps, []string{"a", "b", "c"}); !errors.Is(err, ErrMixedSweep) || !strings.Contains(err.Error(), "self-trained") {
		t.Errorf("a sweep with and without self-training: %v, want ErrMixedSweep", err)
	}
}

// TestCompareModesKnownAnswer compares two modes over three seeds: the
// difference is paired by seed (its sd is the per-seed differences', not
// the modes' spread), and modes of other seeds or experiments are refused.
func TestCompareModesKnownAnswer(t *testing.T) {
	summary := func(mode string, ft ...float64) Summary {
		var reps []Report
		for i, v := range ft {
			r := seedReport(uint64(i+1), 0.60+0.02*float64(i), v, 0.5)
			r.Config.Mode = mode
			reps = append(reps, r)
		}
		s, err := Aggregate(reps, []string{"seed-1", "seed-2", "seed-3"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pf, joint := summary("", 0.62, 0.66, 0.70), summary(job.ModeJoint, 0.63, 0.68, 0.70)
	if pf.Mode != job.ModePretrainFinetune || joint.Mode != job.ModeJoint {
		t.Fatalf("modes %q, %q", pf.Mode, joint.Mode)
	}
	c, err := CompareModes([]Summary{pf, joint})
	if err != nil || len(c.Differences) != 1 {
		t.Fatalf("compare: %v, %d differences", err, len(c.Differences))
	}
	d := c.Differences[0]
	if math.Abs(d.Difference.Mean-0.01) > 1e-9 || math.Abs(d.Difference.Std-0.01) > 1e-9 || d.CI == nil {
		t.Errorf("joint minus pretrain-finetune = %+v (interval %v), want 1.0 ± 1.0 points with an interval", d.Difference, d.CI)
	}
	md := RenderComparison(c)
	for _, want := range []string{"| `joint` | 62.0 ± 2.0 | 67.0 ± 3.6 |", "`joint` minus `pretrain-finetune`, paired by seed: +1.0 ± 1.0 points"} {
		if !strings.Contains(md, want) {
			t.Errorf("comparison lacks %q:\n%s", want, md)
		}
	}
	short := joint
	short.Seeds = short.Seeds[:2]
	if _, err := CompareModes([]Summary{pf, short}); !errors.Is(err, ErrUnpairedModes) {
		t.Errorf("modes of other seeds: %v, want ErrUnpairedModes", err)
	}
	other := joint
	other.Model = "nin4"
	if _, err := CompareModes([]Summary{pf, other}); !errors.Is(err, ErrMixedSweep) {
		t.Errorf("modes of other networks: %v, want ErrMixedSweep", err)
	}
	mixed := []Report{seedReport(1, 0.6, 0.6, 0.5), seedReport(2, 0.6, 0.6, 0.5)}
	mixed[1].Config.Mode = job.ModeJoint
	if _, err := Aggregate(mixed, []string{"a", "b"}); !errors.Is(err, ErrMixedSweep) || !strings.Contains(err.Error(), "joint") {
		t.Errorf("aggregate of two modes: %v, want ErrMixedSweep naming joint", err)
	}
}
