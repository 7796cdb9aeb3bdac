package coordinator

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/coordinator/blobstore"
	"github.com/whorl-ml/whorl/coordinator/client"
)

// StepDone records that step Step of epoch Epoch completed in generation
// Generation. Applying it twice for the same step is a no-op, so the first of
// several ranks' reports completes the step exactly once.
type StepDone struct {
	JobID      string     `json:"job_id"`
	Generation uint64     `json:"generation"`
	Epoch      int        `json:"epoch"`
	Step       int        `json:"step"`
	Metric     StepMetric `json:"metric"`
}

func (*StepDone) kind() string { return "step" }

func (c *StepDone) apply(s *State) (Result, error) {
	j, err := s.currentJob(c.JobID)
	if err != nil {
		return s.result(), fmt.Errorf("step done: %w", err)
	}
	if err := c.check(s, j); err != nil {
		return s.result(), err
	}
	if c.Epoch < j.Epoch || (c.Epoch == j.Epoch && c.Step < j.NextStep) {
		return s.result(), nil // already completed by another rank's report
	}
	j.NextStep++
	j.Resume = false
	s.Synced = append(s.Synced[:0], s.Ring...)
	s.LeftSynced = nil // whoever left before this step lacks it
	m := c.Metric
	m.Epoch, m.Step, m.Generation = c.Epoch, c.Step, c.Generation
	if ck := j.Checkpoint; ck != nil && ck.Ahead != nil && ck.Ahead.Epoch == c.Epoch && ck.Ahead.Step == c.Step {
		ck.Ahead = nil // recorded now
	}
	j.record(m)
	if j.NextStep >= j.StepsInEpoch() {
		j.History = append(j.History, summarize(j.Metrics, j.Epoch))
		j.Epoch++
		j.NextStep = 0
	}
	return s.result(), nil
}

// record appends a step's metric to the bounded history.
func (j *Job) record(m StepMetric) {
	j.Metrics = append(j.Metrics, m)
	if n := len(j.Metrics); n > 2*metricsHistory { // trimmed in batches: amortised O(1)
		j.Metrics = append(j.Metrics[:0:0], j.Metrics[n-metricsHistory:]...)
	}
}

// check refuses a report that does not fit the job's progress.
func (c *StepDone) check(s *State, j *Job) error {
	if j.Phase != PhasePretraining {
		return fmt.Errorf("step %d/%d of job %s in phase %s: %w", c.Epoch, c.Step, j.ID, j.Phase, client.ErrWrongPhase)
	}
	if c.Generation != s.Generation {
		return fmt.Errorf("step %d/%d of job %s: generation %d, current %d: %w",
			c.Epoch, c.Step, j.ID, c.Generation, s.Generation, cluster.ErrStaleGeneration)
	}
	if c.Epoch > j.Epoch || (c.Epoch == j.Epoch && c.Step > j.NextStep) {
		return fmt.Errorf("step %d/%d of job %s: next is %d/%d: %w",
			c.Epoch, c.Step, j.ID, j.Epoch, j.NextStep, client.ErrBadStep)
	}
	return nil
}

// CommitCheckpoint records a checkpoint whose blob is already replicated to
// a quorum. Its position must be at most one step ahead of the progress
// (see stepAfterNext) and not behind the latest checkpoint, and it must come
// from a generation after the last rollback.
type CommitCheckpoint struct {
	JobID      string     `json:"job_id"`
	Generation uint64     `json:"generation"`
	Checkpoint Checkpoint `json:"checkpoint"`
	// LastStep is the uploader's metric of the step its weights applied
	// last (kept as Checkpoint.Ahead when that step is not recorded yet).
	LastStep *StepMetric `json:"last_step,omitempty"`
}

func (*CommitCheckpoint) kind() string { return "checkpoint" }

func (c *CommitCheckpoint) apply(s *State) (Result, error) {
	j, err := s.currentJob(c.JobID)
	if err != nil {
		return s.result(), fmt.Errorf("commit checkpoint: %w", err)
	}
	ck := normalise(j, c.Checkpoint)
	if err := checkCheckpoint(j, c.Generation, ck); err != nil {
		return s.result(), err
	}
	if j.Checkpoint != nil && j.Checkpoint.Digest == ck.Digest {
		return s.result(), nil
	}
	ck.Ahead = nil
	if m := c.LastStep; m != nil && before(j.Epoch, j.NextStep, ck.Epoch, ck.Step) && m.Epoch == j.Epoch && m.Step == j.NextStep {
		ahead := *m
		ahead.Generation = c.Generation
		ck.Ahead = &ahead
	}
	j.Checkpoint = &ck
	j.Checkpoints = append(j.Checkpoints, ck.Digest)
	if n := len(j.Checkpoints); n > checkpointHistory {
		j.Checkpoints = append(j.Checkpoints[:0:0], j.Checkpoints[n-checkpointHistory:]...)
	}
	return s.result(), nil
}

// normalise writes the end of an epoch as step 0 of the next.
func normalise(j *Job, ck Checkpoint) Checkpoint {
	if n := j.StepsInEpoch(); n > 0 && ck.Step >= n {
		ck.Epoch++
		ck.Step = 0
	}
	return ck
}

// checkCheckpoint validates a checkpoint position against the job.
func checkCheckpoint(j *Job, gen uint64, ck Checkpoint) error {
	if j.Phase != PhasePretraining {
		return fmt.Errorf("checkpoint of job %s in phase %s: %w", j.ID, j.Phase, client.ErrWrongPhase)
	}
	if ck.Epoch < 0 || ck.Step < 0 || !blobstore.ValidDigest(ck.Digest) {
		return fmt.Errorf("checkpoint of job %s at %d/%d with digest %q: %w", j.ID, ck.Epoch, ck.Step, ck.Digest, client.ErrBadCheckpoint)
	}
	if gen < j.RolledBackAt {
		return fmt.Errorf("checkpoint of job %s from generation %d before the rollback at %d: %w",
			j.ID, gen, j.RolledBackAt, cluster.ErrStaleGeneration)
	}
	if e, s := j.stepAfterNext(); before(e, s, ck.Epoch, ck.Step) {
		return fmt.Errorf("checkpoint of job %s at %d/%d is more than one step ahead of progress %d/%d: %w",
			j.ID, ck.Epoch, ck.Step, j.Epoch, j.NextStep, client.ErrBadStep)
	}
	if p := j.Checkpoint; p != nil && before(ck.Epoch, ck.Step, p.Epoch, p.Step) {
		return fmt.Errorf("checkpoint of job %s at %d/%d is behind the latest %d/%d: %w",
			j.ID, ck.Epoch, ck.Step, p.Epoch, p.Step, client.ErrBadStep)
	}
	return nil
}

// stepAfterNext is the position after step NextStep: a checkpoint may be
// one step ahead of the recorded progress, because workers report a step
// only once a later collective proves every member applied it, while rank 0
// checkpoints right after applying it.
func (j *Job) stepAfterNext() (epoch, step int) {
	if j.NextStep+1 >= j.StepsInEpoch() {
		return j.Epoch + 1, 0
	}
	return j.Epoch, j.NextStep + 1
}

// before reports whether position (e1, s1) is before (e2, s2).
func before(e1, s1, e2, s2 int) bool { return e1 < e2 || (e1 == e2 && s1 < s2) }

// SetPhase moves the job from phase From to To (compare-and-set, so a
// deposed leader's driver cannot advance a job twice), with the phase's
// result or failure reason.
type SetPhase struct {
	JobID    string          `json:"job_id"`
	From     Phase           `json:"from"`
	To       Phase           `json:"to"`
	Reason   string          `json:"reason,omitempty"`
	Baseline json.RawMessage `json:"baseline,omitempty"`
	Report   json.RawMessage `json:"report,omitempty"`
	// Artifacts are the result files stored with fine-tuning's result.
	Artifacts []Artifact `json:"artifacts,omitempty"`
	Time      time.Time  `json:"time"`
}

func (*SetPhase) kind() string { return "phase" }

func (c *SetPhase) apply(s *State) (Result, error) {
	j, err := s.currentJob(c.JobID)
	if err != nil {
		return s.result(), fmt.Errorf("set phase: %w", err)
	}
	if j.Phase != c.From {
		return s.result(), fmt.Errorf("set phase of job %s to %s: phase is %s, not %s: %w",
			j.ID, c.To, j.Phase, c.From, client.ErrWrongPhase)
	}
	if !slices.Contains(phases, c.To) {
		return s.result(), fmt.Errorf("set phase of job %s to %q: not a phase: %w", j.ID, c.To, client.ErrBadRequest)
	}
	if err := checkArtifacts(c.Artifacts); err != nil {
		return s.result(), fmt.Errorf("set phase of job %s to %s: %w: %w", j.ID, c.To, client.ErrBadRequest, err)
	}
	j.Phase = c.To
	if c.To == PhaseFailed {
		j.FailureReason = c.Reason
	}
	if c.Baseline != nil {
		j.BaselineJSON = c.Baseline
	}
	if c.Report != nil {
		j.ReportJSON = c.Report
	}
	if c.Artifacts != nil {
		j.Artifacts = c.Artifacts
	}
	if c.To.Terminal() {
		j.FinishedAt = c.Time
	}
	return s.result(), nil
}

// Announce records a coordinator's gRPC address.
type Announce struct {
	ID       string `json:"id"`
	GRPCAddr string `json:"grpc_addr"`
}

func (*Announce) kind() string { return "announce" }

func (c *Announce) apply(s *State) (Result, error) {
	s.Coordinators[c.ID] = c.GRPCAddr
	return s.result(), nil
}

// keepDigests returns the digests whose blobs must be kept (and fetched by
// a node that lacks them): the current job's last checkpoints and its
// result artifacts, and the artifacts of the finished jobs in History. A
// job's blobs are freed when it drops out of History (at once for its
// checkpoints, when the next submission replaces it) and pruned once older
// than blobGrace.
func (s *State) keepDigests() []string {
	var keep []string
	if j := s.Job; j != nil {
		keep = slices.Clone(j.Checkpoints)
		if j.Checkpoint != nil {
			keep = append(keep, j.Checkpoint.Digest)
		}
		for _, a := range j.Artifacts {
			keep = append(keep, a.Digest)
		}
	}
	for _, r := range s.History {
		for _, a := range r.Artifacts {
			keep = append(keep, a.Digest)
		}
	}
	slices.Sort(keep)
	return slices.Compact(keep)
}
