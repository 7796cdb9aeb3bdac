package operator

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/whorl-ml/whorl/operator/v1alpha1"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// phases maps the coordinators' phases of a running job to a WhorlJob's.
var phases = map[pb.Phase]v1alpha1.Phase{
	pb.Phase_PHASE_PENDING:     v1alpha1.PhasePending,
	pb.Phase_PHASE_PRETRAINING: v1alpha1.PhasePretraining,
	pb.Phase_PHASE_BASELINE:    v1alpha1.PhaseBaseline,
	pb.Phase_PHASE_FINETUNING:  v1alpha1.PhaseFineTuning,
	pb.Phase_PHASE_EVALUATING:  v1alpha1.PhaseEvaluating,
}

// observe copies a running job's status from the coordinators into the
// WhorlJob's, with an Event for a new phase and for each fault the
// coordinators survived (a new raft leader, a worker lost).
func (r *Reconciler) observe(wj *v1alpha1.WhorlJob, st *pb.JobStatusResponse) {
	s := &wj.Status
	if p, ok := phases[st.GetPhase()]; ok && p != s.Phase {
		r.cfg.Events.Eventf(wj, nil, eventNormal, string(p), "Watch", "job %s entered %s", s.JobID, st.GetPhase().Label())
		s.Phase = p
	}
	var ring []string
	for _, w := range st.GetWorkers() {
		if w.GetRank() >= 0 {
			ring = append(ring, w.GetWorkerId())
		}
	}
	workers := int32(len(ring))
	if s.Leader != "" && st.GetLeaderId() != "" && st.GetLeaderId() != s.Leader {
		r.cfg.Events.Eventf(wj, nil, eventWarning, "LeaderChanged", "Watch",
			"raft leader %s -> %s; job %s goes on", s.Leader, st.GetLeaderId(), s.JobID)
	}
	if lost := r.lostMembers(s.JobID, ring, st.GetPhase() == pb.Phase_PHASE_PRETRAINING); len(lost) > 0 {
		r.cfg.Events.Eventf(wj, nil, eventWarning, "WorkerLost", "Watch",
			"worker %s left the ring (now %d workers, generation %d); pretraining goes on", strings.Join(lost, ", "), workers, st.GetGeneration())
	}
	if st.GetLeaderId() != "" {
		s.Leader = st.GetLeaderId()
	}
	s.Workers, s.Generation, s.GenerationChanges = workers, int64(st.GetGeneration()), int64(st.GetGenerationChanges())
	r.progress(wj, st)
	s.Message = fmt.Sprintf("job %s: %s", s.JobID, st.GetPhase().Label())
	if st.GetWaitingSince() != nil {
		s.Message += fmt.Sprintf(", waiting for workers since %s", st.GetWaitingSince().AsTime().Format(time.RFC3339))
	}
}

// lostMembers returns the ring members of the job's last poll that are not
// in ring now (a worker lost, even when a replacement joined between two
// polls), and remembers ring; only while pretraining, when the ring trains.
func (r *Reconciler) lostMembers(jobID string, ring []string, pretraining bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.rings[jobID]
	if !pretraining {
		delete(r.rings, jobID)
		return nil
	}
	r.rings[jobID] = ring
	var lost []string
	for _, id := range prev {
		if !slices.Contains(ring, id) {
			lost = append(lost, id)
		}
	}
	return lost
}

// progress sets the epoch, step, progress and ETA of pretraining.
func (r *Reconciler) progress(wj *v1alpha1.WhorlJob, st *pb.JobStatusResponse) {
	s := &wj.Status
	total, steps := int32(st.GetTotalEpochs()), int32(st.GetTotalSteps())
	s.TotalEpochs, s.TotalSteps = total, steps
	done := 0.0
	switch {
	case st.GetPhase() == pb.Phase_PHASE_PRETRAINING && total > 0 && steps > 0:
		s.Epoch, s.Step = min(int32(st.GetEpoch())+1, total), int32(st.GetNextStep())
		done = (float64(st.GetEpoch())*float64(steps) + float64(st.GetNextStep())) / (float64(total) * float64(steps))
	case st.GetPhase() == pb.Phase_PHASE_PENDING:
		s.Epoch, s.Step = 0, 0
	default: // after pretraining
		s.Epoch, s.Step, done = total, 0, 1
	}
	s.EpochProgress = fmt.Sprintf("%d/%d", s.Epoch, total)
	s.Progress = fmt.Sprintf("%.0f%%", 100*done)
	s.ETA, s.Remaining = nil, ""
	if st.GetPhase() != pb.Phase_PHASE_PRETRAINING {
		return
	}
	if eta, ok := r.eta(s.JobID, done); ok {
		t := metav1.NewTime(eta.Truncate(time.Second))
		s.ETA, s.Remaining = &t, eta.Sub(r.cfg.Now()).Round(time.Second).String()
	}
}

// eta estimates when pretraining ends from its rate since the operator
// first saw it.
func (r *Reconciler) eta(jobID string, done float64) (time.Time, bool) {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.rates[jobID]
	if !ok || done < m.progress {
		r.rates[jobID] = mark{at: now, progress: done}
		return time.Time{}, false
	}
	elapsed := now.Sub(m.at)
	if done <= m.progress || elapsed <= 0 {
		return time.Time{}, false
	}
	rate := (done - m.progress) / elapsed.Seconds()
	return now.Add(time.Duration((1 - done) / rate * float64(time.Second))), true
}

// report is the part of report.json the status shows.
type report struct {
	Baseline struct {
		TestAccuracy float64 `json:"test_accuracy"`
	} `json:"baseline"`
	Finetune struct {
		TestAccuracy float64 `json:"test_accuracy"`
	} `json:"finetune"`
	Pretext struct {
		TestRotationAccuracy float64 `json:"test_rotation_accuracy"`
	} `json:"pretext"`
	Gain *float64 `json:"gain"`
}

// parseResult reads the accuracies of a finished job's report.json.
func parseResult(b []byte) (*v1alpha1.Result, error) {
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("read the job's report: %w", err)
	}
	if rep.Gain == nil {
		return nil, fmt.Errorf("read the job's report: no gain in %d bytes", len(b))
	}
	return &v1alpha1.Result{
		Baseline:  fmt.Sprintf("%.1f%%", 100*rep.Baseline.TestAccuracy),
		FineTuned: fmt.Sprintf("%.1f%%", 100*rep.Finetune.TestAccuracy),
		Gain:      fmt.Sprintf("%+.1f", 100**rep.Gain),
		Rotation:  fmt.Sprintf("%.1f%%", 100*rep.Pretext.TestRotationAccuracy),
	}, nil
}

// metaTrue reports whether a condition of the WhorlJob is true.
func metaTrue(wj *v1alpha1.WhorlJob, typ string) bool {
	return meta.IsStatusConditionTrue(wj.Status.Conditions, typ)
}
