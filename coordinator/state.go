package coordinator

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/whorl-ml/whorl/coordinator/blobstore"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
)

// Phase is the lifecycle of a job, replicated in raft.
type Phase string

// The phases of a job, in order; PhaseFailed ends a job early with a reason.
const (
	PhasePending     Phase = "pending"
	PhasePretraining Phase = "pretraining"
	PhaseBaseline    Phase = "baseline"
	PhaseFinetuning  Phase = "finetuning"
	PhaseEvaluating  Phase = "evaluating"
	PhaseDone        Phase = "done"
	PhaseFailed      Phase = "failed"
)

// Terminal reports whether the job is over (done or failed).
func (p Phase) Terminal() bool { return p == PhaseDone || p == PhaseFailed }

// metricsHistory is how many of the newest steps State.Metrics keeps (it
// holds between metricsHistory and twice as many).
const metricsHistory = 512

// checkpointHistory is how many committed checkpoints keep their blobs.
const checkpointHistory = 3

// State is the replicated state of the coordinator: a plain value changed
// only by Command.apply, so it is tested without raft. The FSM serialises it
// as JSON for snapshots.
type State struct {
	// Job is the current (or last) job; nil before the first submission.
	Job *Job `json:"job,omitempty"`
	// History holds the results of the finished jobs that earlier
	// submissions replaced, newest first, at most the Keep of the last
	// SubmitJob (Config.KeepJobs); their artifacts' blobs are kept.
	History []JobRecord `json:"history,omitempty"`
	// Workers are the registered workers by id.
	Workers map[string]*WorkerInfo `json:"workers"`
	// Generation is the ring generation; it changes with the membership.
	Generation uint64 `json:"generation"`
	// GenerationChanges counts generation bumps (for metrics).
	GenerationChanges uint64 `json:"generation_changes"`
	// Ring is the worker ids of the current generation in rank order.
	Ring []string `json:"ring"`
	// Synced are the ring members of the last generation in which a step
	// completed: they hold the current weights. A new generation with none
	// of them resumes from the latest checkpoint.
	Synced []string `json:"synced"`
	// LeftSynced maps a worker that left (or whose lease expired) while
	// synced to its incarnation, until the next step completes: the same
	// process registering again before that still holds the current
	// weights (a worker leaves and rejoins to force a new generation when a
	// link stalls), so it counts as synced again instead of the job
	// rolling back to its checkpoint.
	LeftSynced map[string]string `json:"left_synced,omitempty"`
	// Coordinators maps raft server ids to their gRPC addresses.
	Coordinators map[string]string `json:"coordinators"`
	// Index is the raft index of the last applied command.
	Index uint64 `json:"index"`
}

// Job is the replicated state of one job.
type Job struct {
	ID           string          `json:"id"`
	ConfigJSON   json.RawMessage `json:"config"`
	ConfigSHA256 string          `json:"config_sha256"`
	SubmittedAt  time.Time       `json:"submitted_at"`
	Params       JobParams       `json:"params"`

	Phase         Phase  `json:"phase"`
	FailureReason string `json:"failure_reason,omitempty"`

	// Prepared data (set when pretraining starts).
	ManifestDigest string `json:"manifest_digest,omitempty"`
	TrainIDs       []int  `json:"train_ids,omitempty"`
	// LabeledIDs and LabeledClasses are the labeled training images and
	// their classes (the joint mode's labeled batches); Classes is the
	// data's number of classes.
	LabeledIDs     []int      `json:"labeled_ids,omitempty"`
	LabeledClasses []int      `json:"labeled_classes,omitempty"`
	Classes        int        `json:"classes,omitempty"`
	Mean           [3]float32 `json:"mean"`
	Std            [3]float32 `json:"std"`

	// Progress: steps [0, NextStep) of Epoch are complete.
	Epoch    int `json:"epoch"`
	NextStep int `json:"next_step"`
	// Resume is true while the ring must restore Checkpoint (no member holds
	// the current weights); cleared by the first completed step.
	Resume bool `json:"resume,omitempty"`
	// RolledBackAt is the generation of the last rollback to a checkpoint:
	// checkpoints uploaded by older generations are refused.
	RolledBackAt uint64 `json:"rolled_back_at,omitempty"`
	// WaitingSince is set while pretraining has no workers.
	WaitingSince time.Time `json:"waiting_since,omitzero"`

	// Checkpoint is the latest consistent checkpoint; Checkpoints keeps the
	// digests of the last few (their blobs are kept on disk).
	Checkpoint  *Checkpoint `json:"checkpoint,omitempty"`
	Checkpoints []string    `json:"checkpoints,omitempty"`

	Metrics []StepMetric `json:"metrics,omitempty"`
	// History summarises every completed pretraining epoch, in order.
	History []EpochMetric `json:"history,omitempty"`

	BaselineJSON json.RawMessage `json:"baseline,omitempty"`
	ReportJSON   json.RawMessage `json:"report,omitempty"`
	// Artifacts are the job's result files, stored as blobs on a quorum
	// before fine-tuning's result commits (kept while the job is current
	// or in State.History: see keepDigests).
	Artifacts  []Artifact `json:"artifacts,omitempty"`
	FinishedAt time.Time  `json:"finished_at,omitzero"`
}

// JobRecord is what History keeps of a finished job: its outcome and
// results, without its data, progress or metrics.
type JobRecord struct {
	ID            string          `json:"id"`
	Phase         Phase           `json:"phase"`
	FailureReason string          `json:"failure_reason,omitempty"`
	SubmittedAt   time.Time       `json:"submitted_at"`
	FinishedAt    time.Time       `json:"finished_at,omitzero"`
	ConfigSHA256  string          `json:"config_sha256"`
	BaselineJSON  json.RawMessage `json:"baseline,omitempty"`
	ReportJSON    json.RawMessage `json:"report,omitempty"`
	Artifacts     []Artifact      `json:"artifacts,omitempty"`
	// Pretrained is the final pretraining checkpoint when it is among the
	// artifacts (PretrainedArtifact), whose blob History keeps.
	Pretrained *Checkpoint `json:"pretrained,omitempty"`
}

// summary returns the job's JobRecord.
func (j *Job) summary() JobRecord {
	r := JobRecord{
		ID: j.ID, Phase: j.Phase, FailureReason: j.FailureReason, SubmittedAt: j.SubmittedAt, FinishedAt: j.FinishedAt,
		ConfigSHA256: j.ConfigSHA256, BaselineJSON: j.BaselineJSON, ReportJSON: j.ReportJSON, Artifacts: j.Artifacts,
	}
	if j.FinalCheckpoint() && slices.ContainsFunc(j.Artifacts, func(a Artifact) bool { return a.Digest == j.Checkpoint.Digest }) {
		ck := *j.Checkpoint
		ck.Ahead = nil
		r.Pretrained = &ck
	}
	return r
}

// Artifact is one result file of a job: its base name and the digest and
// size of its blob.
type Artifact struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// checkArtifacts refuses a list with a name that is not a plain file name,
// a name twice, a digest that is not a sha256 or a negative size.
func checkArtifacts(as []Artifact) error {
	seen := map[string]bool{}
	for i, a := range as {
		if err := client.CheckArtifactName(a.Name); err != nil {
			return fmt.Errorf("artifacts[%d]: %w", i, err)
		}
		if seen[a.Name] || !blobstore.ValidDigest(a.Digest) || a.Size < 0 {
			return fmt.Errorf("artifacts[%d] %q (digest %q, %d bytes): a name twice, not a sha256 digest or a negative size", i, a.Name, a.Digest, a.Size)
		}
		seen[a.Name] = true
	}
	return nil
}

// JobParams are the few numbers of the experiment config the coordinator
// interprets.
type JobParams struct {
	Seed               uint64 `json:"seed"`
	Epochs             int    `json:"epochs"`
	GlobalBatch        int    `json:"global_batch"`
	CheckpointInterval int    `json:"checkpoint_interval"`
	// LabeledBatch is the joint mode's labeled images per step (0 in the
	// other mode).
	LabeledBatch int `json:"labeled_batch,omitempty"`
}

// checkIncarnation fails with client.ErrReplaced when worker id is
// registered by another process than incarnation inc (a newer process with
// the same id fences the older one, which must stop). An empty inc, an
// unknown id or a worker registered without an incarnation pass.
func (s *State) checkIncarnation(op, id, inc string) error {
	w, ok := s.Workers[id]
	if inc == "" || !ok || w.Incarnation == "" || w.Incarnation == inc {
		return nil
	}
	return fmt.Errorf("%s of worker %q (incarnation %s): another process registered this id since, from ring address %s (incarnation %s); "+
		"two processes cannot share a worker id, and this one must stop: %w", op, id, inc, w.RingAddr, w.Incarnation, client.ErrReplaced)
}

// WorkerInfo is a registered worker. Its lease lives on the leader (see
// DESIGN.md): only membership changes go through raft.
type WorkerInfo struct {
	ID          string    `json:"id"`
	RingAddr    string    `json:"ring_addr"`
	Incarnation string    `json:"incarnation,omitempty"`
	JoinedAt    time.Time `json:"joined_at"`
}

// Checkpoint locates a committed checkpoint blob: steps [0, Step) of Epoch
// are in it (Step 0 of Epoch e+1 after the last step of epoch e).
type Checkpoint struct {
	Digest string `json:"digest"`
	Epoch  int    `json:"epoch"`
	Step   int    `json:"step"`
	Size   int64  `json:"size"`
	// Ahead is the metric of the step before the checkpoint's position
	// while that step is not recorded (the checkpoint came one step ahead
	// of the progress); a rollback to the checkpoint records it.
	Ahead *StepMetric `json:"ahead,omitempty"`
}

// StepMetric is one completed step in the metrics history.
type StepMetric struct {
	Epoch      int     `json:"epoch"`
	Step       int     `json:"step"`
	Generation uint64  `json:"generation"`
	Loss       float32 `json:"loss"`
	Accuracy   float32 `json:"accuracy,omitempty"`
	// ClassLoss and ClassAccuracy are the joint mode's labeled images'.
	ClassLoss     float32       `json:"class_loss,omitempty"`
	ClassAccuracy float32       `json:"class_accuracy,omitempty"`
	Samples       int           `json:"samples"`
	StepTime      time.Duration `json:"step_time"`
	Time          time.Time     `json:"time"`
}

// EpochMetric summarises a completed pretraining epoch: job.EpochMean of
// its steps' reported loss and accuracy (over the newest metricsHistory
// steps at least, all of an epoch of up to that many steps), the rule the
// single-process loop uses too.
type EpochMetric struct {
	Epoch    int     `json:"epoch"` // 0-based
	Steps    int     `json:"steps"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
	// ClassLoss and ClassAccuracy are the joint mode's labeled images'.
	ClassLoss     float64 `json:"class_loss,omitempty"`
	ClassAccuracy float64 `json:"class_accuracy,omitempty"`
	// Seconds sums the step times of the epoch's steps (job.EpochStat).
	Seconds float64 `json:"seconds,omitempty"`
}

// summarize returns the metric of epoch from the newest record of each of
// its steps in ms (a step redone after a rollback is recorded again). A step
// recorded without its size counts as one image.
func summarize(ms []StepMetric, epoch int) EpochMetric {
	seen := map[int]bool{}
	var steps []job.StepStat
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		if m.Epoch != epoch || seen[m.Step] {
			continue
		}
		seen[m.Step] = true
		steps = append(steps, m.Stat())
	}
	slices.Reverse(steps) // step order, as the single-process loop sums
	return epochMetricOf(epoch, len(steps), job.EpochMean(epoch+1, steps))
}

// NewState returns the empty state.
func NewState() *State {
	return &State{Workers: map[string]*WorkerInfo{}, Coordinators: map[string]string{}}
}

// Clone returns a deep copy (through JSON, the snapshot encoding).
func (s *State) Clone() *State {
	b, err := json.Marshal(s)
	if err != nil {
		panic("coordinator: encode state: " + err.Error()) // plain values only
	}
	c := NewState()
	if err := json.Unmarshal(b, c); err != nil {
		panic("coordinator: decode state: " + err.Error())
	}
	return c
}

// Rank returns the rank of worker id in the current ring, or -1.
func (s *State) Rank(id string) int { return slices.Index(s.Ring, id) }

// StepsInEpoch is the number of global batches of an epoch of the job.
func (j *Job) StepsInEpoch() int { return job.NumSteps(len(j.TrainIDs), j.Params.GlobalBatch) }

// PretrainDone reports whether every step of every epoch completed.
func (j *Job) PretrainDone() bool { return j.Epoch >= j.Params.Epochs }

// FinalCheckpoint reports whether the latest checkpoint holds the end of
// pretraining (the consolidated pretrained model).
func (j *Job) FinalCheckpoint() bool {
	return j.Checkpoint != nil && j.Checkpoint.Epoch >= j.Params.Epochs
}

// ringAddrs returns the ring addresses in rank order.
func (s *State) ringAddrs() []string {
	out := make([]string, len(s.Ring))
	for i, id := range s.Ring {
		out[i] = s.Workers[id].RingAddr
	}
	return out
}
