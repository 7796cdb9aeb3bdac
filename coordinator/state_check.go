package coordinator

import (
	"fmt"
	"slices"

	"github.com/whorl-ml/whorl/coordinator/blobstore"
)

// phases are the known phases.
var phases = []Phase{PhasePending, PhasePretraining, PhaseBaseline, PhaseFinetuning, PhaseEvaluating, PhaseDone, PhaseFailed}

// Check reports the first broken invariant of s: the ones the commands
// keep, so that a snapshot restored from disk or sent by a leader is used
// only when a state machine could have produced it.
func (s *State) Check() error {
	if err := s.checkMembers(); err != nil {
		return err
	}
	if err := s.checkHistory(); err != nil {
		return err
	}
	if s.Job == nil {
		return nil
	}
	return s.Job.check()
}

// checkMembers: workers keyed by their ids with ring addresses; the ring
// is the workers, each once.
func (s *State) checkMembers() error {
	for id, w := range s.Workers {
		if w == nil || w.ID != id || id == "" || w.RingAddr == "" {
			return fmt.Errorf("%w: workers[%q] = %+v", ErrBadState, id, w)
		}
	}
	seen := map[string]bool{}
	for r, id := range s.Ring {
		if s.Workers[id] == nil || seen[id] {
			return fmt.Errorf("%w: ring[%d] = %q is not a registered worker or is there twice", ErrBadState, r, id)
		}
		seen[id] = true
	}
	if len(s.Ring) != len(s.Workers) {
		return fmt.Errorf("%w: ring of %d, %d workers", ErrBadState, len(s.Ring), len(s.Workers))
	}
	return nil
}

// check: a known phase, sane parameters, progress and checkpoints inside
// the plan, labeled images with their classes, digests that are digests.
func (j *Job) check() error {
	p := j.Params
	switch {
	case j.ID == "":
		return fmt.Errorf("%w: job without an id", ErrBadState)
	case !slices.Contains(phases, j.Phase):
		return fmt.Errorf("%w: job %s: phase %q", ErrBadState, j.ID, j.Phase)
	case p.Epochs < 1 || p.GlobalBatch < 1 || p.CheckpointInterval < 0 || p.LabeledBatch < 0:
		return fmt.Errorf("%w: job %s: params %+v", ErrBadState, j.ID, p)
	case len(j.LabeledIDs) != len(j.LabeledClasses):
		return fmt.Errorf("%w: job %s: %d labeled images, %d classes", ErrBadState, j.ID, len(j.LabeledIDs), len(j.LabeledClasses))
	case slices.ContainsFunc(j.TrainIDs, func(i int) bool { return i < 0 }) || slices.ContainsFunc(j.LabeledIDs, func(i int) bool { return i < 0 }):
		return fmt.Errorf("%w: job %s: a negative image id", ErrBadState, j.ID)
	case j.Epoch < 0 || j.Epoch > p.Epochs || j.NextStep < 0 || (len(j.TrainIDs) > 0 && j.NextStep > j.StepsInEpoch()):
		return fmt.Errorf("%w: job %s: progress epoch %d step %d, plan of %d epochs of %d steps", ErrBadState, j.ID, j.Epoch, j.NextStep, p.Epochs, j.StepsInEpoch())
	}
	return j.checkCheckpoints()
}

// checkCheckpoints: digests are sha256 hex, positions non-negative;
// artifacts are plain file names, each once.
func (j *Job) checkCheckpoints() error {
	if c := j.Checkpoint; c != nil && (!blobstore.ValidDigest(c.Digest) || c.Epoch < 0 || c.Step < 0 || c.Size < 0) {
		return fmt.Errorf("%w: job %s: checkpoint %+v", ErrBadState, j.ID, *c)
	}
	for i, d := range j.Checkpoints {
		if !blobstore.ValidDigest(d) {
			return fmt.Errorf("%w: job %s: checkpoints[%d] = %q is not a sha256 digest", ErrBadState, j.ID, i, d)
		}
	}
	if err := checkArtifacts(j.Artifacts); err != nil {
		return fmt.Errorf("%w: job %s: %w", ErrBadState, j.ID, err)
	}
	return nil
}

// checkHistory: at most MaxKeepJobs records of finished jobs, each id once
// and not the current job's, artifacts as a job's, a pretrained checkpoint
// that is among them.
func (s *State) checkHistory() error {
	if len(s.History) > MaxKeepJobs {
		return fmt.Errorf("%w: history of %d jobs, at most %d", ErrBadState, len(s.History), MaxKeepJobs)
	}
	seen := map[string]bool{}
	if s.Job != nil {
		seen[s.Job.ID] = true
	}
	for i, r := range s.History {
		switch {
		case r.ID == "" || seen[r.ID]:
			return fmt.Errorf("%w: history[%d]: id %q empty or there twice", ErrBadState, i, r.ID)
		case !r.Phase.Terminal():
			return fmt.Errorf("%w: history[%d] job %s: phase %q, not done or failed", ErrBadState, i, r.ID, r.Phase)
		case r.Pretrained != nil && !slices.ContainsFunc(r.Artifacts, func(a Artifact) bool { return a.Digest == r.Pretrained.Digest }):
			return fmt.Errorf("%w: history[%d] job %s: pretrained checkpoint %q is not among its artifacts", ErrBadState, i, r.ID, r.Pretrained.Digest)
		}
		if err := checkArtifacts(r.Artifacts); err != nil {
			return fmt.Errorf("%w: history[%d] job %s: %w", ErrBadState, i, r.ID, err)
		}
		seen[r.ID] = true
	}
	return nil
}
