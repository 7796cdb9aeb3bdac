package experiment

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/job"
)

// TestNewPrediction checks the arg-max, the softmax (known answer, stable
// for large logits) and the class names.
func TestNewPrediction(t *testing.T) {
	p := newPrediction("a.jpg", []float32{1000, 1000 + float32(math.Log(3)), 0}, []string{"daisy", "rose", "tulip"})
	if p.Class != 1 || p.Label != "rose" || math.Abs(p.Probability-0.75) > 1e-4 || math.Abs(p.Probabilities[0]-0.25) > 1e-4 {
		t.Errorf("prediction %+v, want rose at 0.75 and daisy at 0.25", p)
	}
	if got := classNames(map[string]string{}, 2); got[1] != "class 1" {
		t.Errorf("numbered names %v", got)
	}
}

// TestPredictNormalizer: the flags' mean and std win over the checkpoint's
// metadata, and a missing, malformed or non-positive one is refused naming
// where it came from.
func TestPredictNormalizer(t *testing.T) {
	meta := map[string]string{job.MetaNormMean: "[0.5,0.4,0.3]", job.MetaNormStd: "[0.25,0.25,0.25]"}
	nz, err := PredictFiles{Checkpoint: "c"}.normalizer(meta)
	if err != nil || nz.Mean != [3]float32{0.5, 0.4, 0.3} || nz.Std != [3]float32{0.25, 0.25, 0.25} {
		t.Errorf("from metadata: %+v, %v", nz, err)
	}
	if nz, err := (PredictFiles{Mean: "0,0,0", Std: "1,1,1"}).normalizer(meta); err != nil || nz.Std != [3]float32{1, 1, 1} {
		t.Errorf("from flags: %+v, %v", nz, err)
	}
	for _, tc := range []struct {
		p    PredictFiles
		meta map[string]string
		want string
	}{
		{PredictFiles{Checkpoint: "c"}, nil, "pass --mean and --std"},
		{PredictFiles{Mean: "1,2", Std: "1,1,1"}, nil, "--mean \"1,2\": want 3 comma-separated numbers"},
		{PredictFiles{Mean: "0,0,0", Std: "1,NaN,1"}, nil, "is not a finite number"},
		{PredictFiles{Mean: "0,0,0", Std: "1,0,1"}, nil, "--std channel 1 is 0; want > 0"},
		{PredictFiles{Checkpoint: "c", Std: "1,1,1"}, map[string]string{job.MetaNormMean: "[1,2]"}, "checkpoint c metadata " + job.MetaNormMean},
	} {
		if _, err := tc.p.normalizer(tc.meta); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.p, err, tc.want)
		}
	}
	var b bytes.Buffer
	if err := PrintPredictions(&b, []Prediction{{Image: "a.jpg", Label: "rose", Class: 1, Probability: 0.75, Logits: []float32{1, 2}}}, false); err != nil ||
		b.String() != "a.jpg: rose (class 1, p=0.750) logits [1.0000 2.0000]\n" {
		t.Errorf("PrintPredictions: %q, %v", b.String(), err)
	}
}
