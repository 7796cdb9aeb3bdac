package coordinator

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
)

// Command is one replicated change of State: a small typed raft entry. The
// proposer fills every value (including times), so applying it is
// deterministic on every node.
type Command interface {
	// kind names the command in its encoding.
	kind() string
	// apply changes s; an error leaves s unchanged.
	apply(s *State) (Result, error)
}

// Result is what applying a command returns to its proposer.
type Result struct {
	JobID      string
	Generation uint64
	Epoch      int
	NextStep   int
}

// envelope is the raft log encoding of a Command.
type envelope struct {
	Kind string          `json:"k"`
	Data json.RawMessage `json:"d"`
}

// commandKinds constructs an empty command of each kind for decoding.
var commandKinds = map[string]func() Command{
	"submit":     func() Command { return &SubmitJob{} },
	"start":      func() Command { return &StartPretraining{} },
	"register":   func() Command { return &RegisterWorker{} },
	"remove":     func() Command { return &RemoveWorkers{} },
	"step":       func() Command { return &StepDone{} },
	"checkpoint": func() Command { return &CommitCheckpoint{} },
	"phase":      func() Command { return &SetPhase{} },
	"announce":   func() Command { return &Announce{} },
}

// EncodeCommand encodes c as a raft log entry.
func EncodeCommand(c Command) ([]byte, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode command %s: %w", c.kind(), err)
	}
	return json.Marshal(envelope{Kind: c.kind(), Data: data})
}

// DecodeCommand decodes a raft log entry written by EncodeCommand.
func DecodeCommand(b []byte) (Command, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode command envelope: %w", err)
	}
	mk, ok := commandKinds[e.Kind]
	if !ok {
		return nil, fmt.Errorf("decode command: unknown kind %q", e.Kind)
	}
	c := mk()
	if err := json.Unmarshal(e.Data, c); err != nil {
		return nil, fmt.Errorf("decode command %s: %w", e.Kind, err)
	}
	return c, nil
}

// result summarises s for a proposer.
func (s *State) result() Result {
	r := Result{Generation: s.Generation}
	if s.Job != nil {
		r.JobID, r.Epoch, r.NextStep = s.Job.ID, s.Job.Epoch, s.Job.NextStep
	}
	return r
}

// currentJob returns the job named id (or the current one for "").
func (s *State) currentJob(id string) (*Job, error) {
	if s.Job == nil || (id != "" && s.Job.ID != id) {
		return nil, fmt.Errorf("job %q: %w", id, client.ErrNoJob)
	}
	return s.Job, nil
}

// finishedJob returns History's record of job id.
func (s *State) finishedJob(id string) (*JobRecord, bool) {
	for i := range s.History {
		if s.History[i].ID == id {
			return &s.History[i], true
		}
	}
	return nil, false
}

// SubmitJob starts a new job in phase pending. While a job runs, a
// submission of the same configuration (equal ConfigSHA256) is a no-op whose
// result names the running job, so a client that retries a submission whose
// answer it lost gets its job; any other submission is refused. The
// finished job it replaces moves to the front of State.History, which then
// keeps the newest Keep records: the proposer's Config.KeepJobs, carried in
// the entry so every node keeps the same ones whatever its own
// configuration (0, as in entries written before the field: none).
type SubmitJob struct {
	Job  Job `json:"job"`
	Keep int `json:"keep,omitempty"`
}

func (*SubmitJob) kind() string { return "submit" }

func (c *SubmitJob) apply(s *State) (Result, error) {
	if s.Job != nil && !s.Job.Phase.Terminal() {
		if c.Job.ConfigSHA256 != "" && c.Job.ConfigSHA256 == s.Job.ConfigSHA256 {
			return s.result(), nil
		}
		return s.result(), fmt.Errorf("submit job %s: job %s is %s: %w", c.Job.ID, s.Job.ID, s.Job.Phase, client.ErrJobRunning)
	}
	if c.Keep < 0 || c.Keep > MaxKeepJobs {
		return s.result(), fmt.Errorf("submit job %s: keep %d finished jobs, not in 0..%d: %w", c.Job.ID, c.Keep, MaxKeepJobs, client.ErrBadRequest)
	}
	if s.Job != nil {
		s.History = slices.Insert(s.History, 0, s.Job.summary())
	}
	// A record under the new job's id (an id reused, as before job ids got
	// their raft index suffix) is shadowed by it: dropped.
	s.History = slices.DeleteFunc(s.History, func(r JobRecord) bool { return r.ID == c.Job.ID })
	s.History = slices.Clip(s.History[:min(len(s.History), c.Keep)])
	j := c.Job
	j.Phase = PhasePending
	s.Job = &j
	return s.result(), nil
}

// StartPretraining records the prepared data and enters pretraining at
// epoch 0, step 0, in a new generation.
type StartPretraining struct {
	JobID          string     `json:"job_id"`
	ManifestDigest string     `json:"manifest_digest"`
	TrainIDs       []int      `json:"train_ids"`
	LabeledIDs     []int      `json:"labeled_ids,omitempty"`
	LabeledClasses []int      `json:"labeled_classes,omitempty"`
	Classes        int        `json:"classes,omitempty"`
	Mean           [3]float32 `json:"mean"`
	Std            [3]float32 `json:"std"`
	Time           time.Time  `json:"time"`
}

func (*StartPretraining) kind() string { return "start" }

func (c *StartPretraining) apply(s *State) (Result, error) {
	j, err := s.currentJob(c.JobID)
	if err != nil {
		return s.result(), fmt.Errorf("start pretraining: %w", err)
	}
	if j.Phase != PhasePending {
		return s.result(), fmt.Errorf("start pretraining of job %s in phase %s: %w", j.ID, j.Phase, client.ErrWrongPhase)
	}
	if len(c.TrainIDs) == 0 {
		return s.result(), fmt.Errorf("start pretraining of job %s: no training images: %w", j.ID, client.ErrBadJob)
	}
	if len(c.LabeledIDs) != len(c.LabeledClasses) {
		return s.result(), fmt.Errorf("start pretraining of job %s: %d labeled images with %d classes: %w",
			j.ID, len(c.LabeledIDs), len(c.LabeledClasses), client.ErrBadJob)
	}
	j.ManifestDigest, j.TrainIDs, j.Mean, j.Std = c.ManifestDigest, c.TrainIDs, c.Mean, c.Std
	j.LabeledIDs, j.LabeledClasses, j.Classes = c.LabeledIDs, c.LabeledClasses, c.Classes
	j.Phase, j.Epoch, j.NextStep, j.Resume = PhasePretraining, 0, 0, true
	s.Synced, s.LeftSynced = nil, nil
	s.newGeneration(c.Time)
	return s.result(), nil
}

// RegisterWorker adds a worker. A known id registering again with the same
// address and the same non-empty incarnation is a retry and changes
// nothing; otherwise it is a restarted worker: it loses its synced status.
// Both new workers and restarts change the membership and bump the
// generation.
type RegisterWorker struct {
	ID          string    `json:"id"`
	RingAddr    string    `json:"ring_addr"`
	Incarnation string    `json:"incarnation,omitempty"`
	Time        time.Time `json:"time"`
}

func (*RegisterWorker) kind() string { return "register" }

func (c *RegisterWorker) apply(s *State) (Result, error) {
	w, ok := s.Workers[c.ID]
	if ok && c.Incarnation != "" && w.Incarnation == c.Incarnation && w.RingAddr == c.RingAddr {
		return s.result(), nil
	}
	if !ok {
		w = &WorkerInfo{ID: c.ID, JoinedAt: c.Time}
		s.Workers[c.ID] = w
	}
	w.RingAddr, w.Incarnation = c.RingAddr, c.Incarnation
	s.Synced = slices.DeleteFunc(s.Synced, func(id string) bool { return id == c.ID })
	if inc, ok := s.LeftSynced[c.ID]; ok && inc != "" && inc == c.Incarnation {
		s.Synced = append(s.Synced, c.ID) // the same process, no step since it left
	}
	delete(s.LeftSynced, c.ID)
	s.newGeneration(c.Time)
	return s.result(), nil
}

// RemoveWorkers removes workers (lease expired or graceful leave). With
// Incarnation set (a leave: one id) it removes nothing and fails with
// client.ErrReplaced when another process registered the id since.
type RemoveWorkers struct {
	IDs         []string  `json:"ids"`
	Reason      string    `json:"reason"`
	Incarnation string    `json:"incarnation,omitempty"`
	Time        time.Time `json:"time"`
}

func (*RemoveWorkers) kind() string { return "remove" }

func (c *RemoveWorkers) apply(s *State) (Result, error) {
	for _, id := range c.IDs {
		if err := s.checkIncarnation("leave", id, c.Incarnation); err != nil {
			return s.result(), err
		}
	}
	removed := false
	for _, id := range c.IDs {
		if w, ok := s.Workers[id]; ok {
			if slices.Contains(s.Synced, id) && w.Incarnation != "" {
				if s.LeftSynced == nil {
					s.LeftSynced = map[string]string{}
				}
				s.LeftSynced[id] = w.Incarnation
			}
			delete(s.Workers, id)
			removed = true
		}
	}
	if removed {
		s.newGeneration(c.Time)
	}
	return s.result(), nil
}

// newGeneration bumps the generation and orders the ring: the synced
// members first (in their previous order, so rank 0 holds the current
// weights), then the others by join time. With no synced member left,
// pretraining rolls back to the latest checkpoint; with no member at all,
// the job waits.
func (s *State) newGeneration(now time.Time) {
	s.Generation++
	s.GenerationChanges++
	var ring []string
	for _, id := range s.Synced {
		if _, ok := s.Workers[id]; ok {
			ring = append(ring, id)
		}
	}
	synced := len(ring)
	s.Synced = append([]string(nil), ring...)
	var rest []*WorkerInfo
	for id, w := range s.Workers {
		if !slices.Contains(ring, id) {
			rest = append(rest, w)
		}
	}
	sort.Slice(rest, func(a, b int) bool {
		if !rest[a].JoinedAt.Equal(rest[b].JoinedAt) {
			return rest[a].JoinedAt.Before(rest[b].JoinedAt)
		}
		return rest[a].ID < rest[b].ID
	})
	for _, w := range rest {
		ring = append(ring, w.ID)
	}
	s.Ring = ring
	s.adjustPretraining(synced, now)
}

// adjustPretraining applies a membership change to pretraining progress.
func (s *State) adjustPretraining(synced int, now time.Time) {
	j := s.Job
	if j == nil || j.Phase != PhasePretraining {
		return
	}
	if len(s.Ring) == 0 {
		if j.WaitingSince.IsZero() {
			j.WaitingSince = now
		}
	} else {
		j.WaitingSince = time.Time{}
	}
	if synced == 0 && !j.Resume {
		j.rollback(s.Generation)
	}
}

// rollback makes the job resume from its latest checkpoint (or from the
// start when there is none): no worker holds newer weights.
func (j *Job) rollback(gen uint64) {
	j.Epoch, j.NextStep = 0, 0
	if ck := j.Checkpoint; ck != nil {
		j.Epoch, j.NextStep = ck.Epoch, ck.Step
		if m := ck.Ahead; m != nil {
			// The checkpoint holds a step whose report never came: record it
			// from the checkpoint, and close its epoch if it was the last.
			j.record(*m)
			if m.Step == j.StepsInEpoch()-1 && len(j.History) == m.Epoch {
				j.History = append(j.History, summarize(j.Metrics, m.Epoch))
			}
			ck.Ahead = nil
		}
	}
	j.History = j.History[:min(len(j.History), j.Epoch)] // later epochs are trained again
	j.Resume = true
	j.RolledBackAt = gen
}
