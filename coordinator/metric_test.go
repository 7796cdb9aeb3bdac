package coordinator

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/job"
)

// allSet fails the test if a field of v (a struct) other than except is
// its zero value, so the round trips below cover every field, present and
// future.
func allSet(t *testing.T, what string, v any, except ...string) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() && !slices.Contains(except, rv.Type().Field(i).Name) {
			t.Errorf("%s.%s is zero in the fixture: set it, and carry it in the conversions", what, rv.Type().Field(i).Name)
		}
	}
}

// TestStepMetricCrossings carries a step metric with every field set over
// the wire and back, and into the job's statistic: nothing is dropped.
func TestStepMetricCrossings(t *testing.T) {
	m := StepMetric{Epoch: 2, Step: 7, Generation: 9, Loss: 1.25, Accuracy: 0.5, ClassLoss: 0.75, ClassAccuracy: 0.25,
		Samples: 96, StepTime: 1500 * time.Millisecond, Time: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	allSet(t, "StepMetric", m)
	back := stepMetricOf(stepMetricPB(m), m.Samples)
	if !back.Time.Equal(m.Time) {
		t.Errorf("time %v back as %v", m.Time, back.Time)
	}
	back.Time = m.Time
	if back != m {
		t.Errorf("over the wire and back: %+v, want %+v", back, m)
	}
	want := job.StepStat{Images: 96, Loss: 1.25, Accuracy: 0.5, ClassLoss: 0.75, ClassAccuracy: 0.25, Seconds: 1.5}
	allSet(t, "job.StepStat", want)
	if got := m.Stat(); got != want {
		t.Errorf("Stat() = %+v, want %+v", got, want)
	}
	if got := stepMetricOf(stepMetricPB(StepMetric{}), 0); !got.Time.IsZero() {
		t.Errorf("a metric without a time came back at %v", got.Time)
	}
}

// TestEpochMetricCrossings carries an epoch statistic into the state, out
// to the job's terms (1-based epoch) and onto the wire.
func TestEpochMetricCrossings(t *testing.T) {
	es := job.EpochStat{Epoch: 3, Loss: 1.25, Accuracy: 0.5, ClassLoss: 0.75, ClassAccuracy: 0.25, Seconds: 12.5}
	allSet(t, "job.EpochStat", es, "ValidationAccuracy") // the supervised runs' epochs only
	e := epochMetricOf(2, 40, es)
	allSet(t, "EpochMetric", e)
	if got := e.Stat(); got != es {
		t.Errorf("Stat() = %+v, want %+v", got, es)
	}
	w := epochMetricPB(e)
	if w.GetEpoch() != 3 || w.GetSteps() != 40 || w.GetLoss() != 1.25 || w.GetAccuracy() != 0.5 ||
		w.GetClassLoss() != 0.75 || w.GetClassAccuracy() != 0.25 {
		t.Errorf("on the wire: %v", w)
	}
}
