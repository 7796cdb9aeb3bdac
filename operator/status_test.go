package operator

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/operator/v1alpha1"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/randfill"
)

// TestParseResultReadsExperimentReport: the operator's view of report.json
// reads experiment.Report's own JSON (a renamed key fails here).
func TestParseResultReadsExperimentReport(t *testing.T) {
	rep := experiment.Report{Gain: 0.0346}
	rep.Baseline.TestAccuracy, rep.Finetune.TestAccuracy, rep.Pretext.TestRotationAccuracy = 0.6354, 0.67, 0.7391
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseResult(b)
	if err != nil {
		t.Fatal(err)
	}
	want := v1alpha1.Result{Baseline: "63.5%", FineTuned: "67.0%", Gain: "+3.5", Rotation: "73.9%"}
	if *got != want {
		t.Fatalf("parseResult = %+v, want %+v", *got, want)
	}
	for _, bad := range []string{``, `{`, `{"baseline":{}}`} {
		if _, err := parseResult([]byte(bad)); err == nil {
			t.Errorf("parseResult(%q) accepted a report without a gain", bad)
		}
	}
}

// TestJobConfig: the spec's preset with spec.job's keys over it, as whorl
// submit builds a job; bad keys and values are refused naming the key.
func TestJobConfig(t *testing.T) {
	paper, _ := job.Preset(job.PresetPaper)
	tests := []struct {
		name    string
		spec    v1alpha1.WhorlJobSpec
		check   func(job.Config) bool
		errWant string
	}{
		{"default preset", v1alpha1.WhorlJobSpec{}, func(c job.Config) bool { return c.Preset == job.PresetQuick }, ""},
		{"paper", v1alpha1.WhorlJobSpec{Preset: job.PresetPaper}, func(c job.Config) bool { return reflect.DeepEqual(c, paper) }, ""},
		{"overlay", v1alpha1.WhorlJobSpec{Job: raw(`{"pretrain":{"epochs":3}}`)}, func(c job.Config) bool {
			return c.Pretrain.Epochs == 3 && c.Pretrain.GlobalBatch == job.DefaultConfig().Pretrain.GlobalBatch
		}, ""},
		{"unknown key", v1alpha1.WhorlJobSpec{Job: raw(`{"pretrain":{"epochz":3}}`)}, nil, "epochz"},
		{"out of range", v1alpha1.WhorlJobSpec{Job: raw(`{"data":{"image_size":4}}`)}, nil, "data.image_size"},
		{"unknown preset", v1alpha1.WhorlJobSpec{Preset: "huge"}, nil, "spec.preset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := JobConfig(tc.spec)
			if tc.errWant != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errWant) {
					t.Fatalf("err = %v, want one naming %q", err, tc.errWant)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("JobConfig = %+v, %v", c, err)
			}
		})
	}
}

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

// TestProgressAndETA: epoch, progress and an ETA from the rate between two
// polls.
func TestProgressAndETA(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := &Reconciler{cfg: Config{Now: func() time.Time { return now }, Events: nopEvents{}}, rates: map[string]mark{}, rings: map[string][]string{}}
	wj := &v1alpha1.WhorlJob{Status: v1alpha1.WhorlJobStatus{JobID: "j", Phase: v1alpha1.PhasePretraining}}
	st := &pb.JobStatusResponse{JobId: "j", Phase: pb.Phase_PHASE_PRETRAINING, Epoch: 0, TotalEpochs: 4, NextStep: 5, TotalSteps: 10, LeaderId: "c0"}
	r.observe(wj, st)
	if wj.Status.EpochProgress != "1/4" || wj.Status.Progress != "12%" || wj.Status.ETA != nil {
		t.Fatalf("first poll: %+v", wj.Status)
	}
	now = now.Add(30 * time.Second)
	st.Epoch, st.NextStep = 1, 0 // 10 of 40 steps: 5 steps in 30 s, 30 steps left
	r.observe(wj, st)
	if wj.Status.EpochProgress != "2/4" || wj.Status.Progress != "25%" || wj.Status.Remaining != "3m0s" {
		t.Fatalf("second poll: epoch %s progress %s remaining %s", wj.Status.EpochProgress, wj.Status.Progress, wj.Status.Remaining)
	}
	st.Phase = pb.Phase_PHASE_BASELINE
	r.observe(wj, st)
	if wj.Status.Progress != "100%" || wj.Status.EpochProgress != "4/4" || wj.Status.ETA != nil || wj.Status.Phase != v1alpha1.PhaseBaseline {
		t.Fatalf("after pretraining: %+v", wj.Status)
	}
}

// TestObserveFaultEvents: a new raft leader and a lost worker each record a
// Warning event.
func TestObserveFaultEvents(t *testing.T) {
	ev := &recordEvents{}
	r := &Reconciler{cfg: Config{Now: time.Now, Events: ev}, rates: map[string]mark{}, rings: map[string][]string{}}
	wj := &v1alpha1.WhorlJob{Status: v1alpha1.WhorlJobStatus{JobID: "j"}}
	ring := func(ids ...string) []*pb.WorkerStatus {
		var ws []*pb.WorkerStatus
		for i, id := range ids {
			ws = append(ws, &pb.WorkerStatus{WorkerId: id, Rank: int32(i)})
		}
		return append(ws, &pb.WorkerStatus{WorkerId: "idle", Rank: -1})
	}
	r.observe(wj, &pb.JobStatusResponse{Phase: pb.Phase_PHASE_PRETRAINING, LeaderId: "c0", Generation: 3, Workers: ring("a", "b", "c")})
	r.observe(wj, &pb.JobStatusResponse{Phase: pb.Phase_PHASE_PRETRAINING, LeaderId: "c1", Generation: 4, Workers: ring("a", "b")})
	// b replaced by d between two polls: the ring's size is the same, b is lost.
	r.observe(wj, &pb.JobStatusResponse{Phase: pb.Phase_PHASE_PRETRAINING, LeaderId: "c1", Generation: 6, Workers: ring("a", "d")})
	if got := strings.Join(ev.reasons, " "); got != "Pretraining LeaderChanged WorkerLost WorkerLost" {
		t.Fatalf("events %q, want Pretraining LeaderChanged WorkerLost WorkerLost", got)
	}
	if wj.Status.Workers != 2 || wj.Status.Leader != "c1" || wj.Status.Generation != 6 {
		t.Fatalf("status %+v", wj.Status)
	}
}

// TestDeepCopy: a deep copy equals its original and shares no memory
// with it (randfill fills every field; no pointer, slice or map of the
// copy points where the original's does).
func TestDeepCopy(t *testing.T) {
	f := randfill.New().NilChance(0).NumElements(1, 3).Funcs(
		func(j *apiextensionsv1.JSON, c randfill.Continue) {
			j.Raw = []byte(`{"seed":` + string(rune('1'+c.Intn(8))) + `}`)
		},
		func(tm *metav1.Time, c randfill.Continue) { *tm = metav1.Unix(c.Int63n(1<<31), 0) },
	)
	for range 20 {
		var orig v1alpha1.WhorlJob
		f.Fill(&orig)
		cp := orig.DeepCopy()
		if !reflect.DeepEqual(&orig, cp) {
			t.Fatal("DeepCopy differs from the original")
		}
		if path := shared(reflect.ValueOf(orig), reflect.ValueOf(*cp), "WhorlJob"); path != "" {
			t.Fatalf("the copy shares %s with the original", path)
		}
	}
}

// shared returns the path of the first pointer, slice or map that a and b
// (equal values) both hold, or "".
func shared(a, b reflect.Value, path string) string {
	if a.Type() == reflect.TypeFor[time.Time]() {
		return "" // a value; its *Location is shared by design
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case reflect.Map:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}

type nopEvents struct{}

func (nopEvents) Eventf(_, _ runtime.Object, _, _, _, _ string, _ ...any) {}

type recordEvents struct{ reasons []string }

func (e *recordEvents) Eventf(_, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	e.reasons = append(e.reasons, reason)
}
