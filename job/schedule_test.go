package job

import (
	"math"
	"testing"
)

func TestSchedules(t *testing.T) {
	cases := []struct {
		name      string
		got, want float64
	}{
		{"warm-up first step", Cosine(0.1, 0, 100, 10), 0.01},
		{"warm-up last step", Cosine(0.1, 9, 100, 10), 0.1},
		{"cosine start", Cosine(0.1, 10, 100, 10), 0.1},
		{"cosine middle", Cosine(0.1, 55, 100, 10), 0.05},
		{"cosine end", Cosine(0.1, 100, 100, 10), 0},
		{"step before", StepDecay(0.1, 29, []int{30, 60, 80}, 0.2), 0.1},
		{"step at 30", StepDecay(0.1, 30, []int{30, 60, 80}, 0.2), 0.02},
		{"step at 80", StepDecay(0.1, 80, []int{30, 60, 80}, 0.2), 0.1 * 0.2 * 0.2 * 0.2},
		{"no warm-up", Warmup(0.3, 0, 0), 0.3},
	}
	for _, c := range cases {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s: %g, want %g", c.name, c.got, c.want)
		}
	}
}

// TestRateMatchesSchedules checks ScheduleConfig.Rate (what every loop
// applies) against the schedule functions.
func TestRateMatchesSchedules(t *testing.T) {
	tests := []struct {
		s    ScheduleConfig
		want func(epoch, step int) float64
	}{
		{ScheduleConfig{Kind: ScheduleCosine}, func(e, s int) float64 { return Cosine(0.1, e*10+s, 50, 0) }},
		{ScheduleConfig{Kind: ScheduleStep, Milestones: []int{2, 4}, Gamma: 0.2},
			func(e, s int) float64 { return StepDecay(0.1, e, []int{2, 4}, 0.2) }},
		{ScheduleConfig{Kind: ScheduleConstant, WarmupEpochs: 1},
			func(e, s int) float64 { return Warmup(0.1, e*10+s, 10) }},
	}
	for _, tt := range tests {
		for _, at := range [][2]int{{0, 0}, {0, 9}, {1, 3}, {2, 0}, {4, 9}} {
			got, want := tt.s.Rate(0.1, at[0], at[1], 10, 5), tt.want(at[0], at[1])
			if math.Abs(got-want) > 1e-12 {
				t.Errorf("%s at epoch %d step %d: %g, want %g", tt.s.Kind, at[0], at[1], got, want)
			}
		}
	}
}
