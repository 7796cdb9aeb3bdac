package coordinator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// phasePB maps phases to the wire enum.
var phasePB = map[Phase]pb.Phase{
	PhasePending: pb.Phase_PHASE_PENDING, PhasePretraining: pb.Phase_PHASE_PRETRAINING,
	PhaseBaseline: pb.Phase_PHASE_BASELINE, PhaseFinetuning: pb.Phase_PHASE_FINETUNING,
	PhaseEvaluating: pb.Phase_PHASE_EVALUATING, PhaseDone: pb.Phase_PHASE_DONE, PhaseFailed: pb.Phase_PHASE_FAILED,
}

// orderCache keeps the plan of the current epoch (computing its order for
// every assignment would be wasted work).
type orderCache struct {
	mu    sync.Mutex
	job   string
	epoch int
	plan  *job.Epoch
}

// get returns the epoch plan of job j.
func (c *orderCache) get(j *Job) job.Epoch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plan == nil || c.job != j.ID || c.epoch != j.Epoch {
		p := job.PlanEpoch(j.TrainIDs, j.Params.Seed, j.Epoch, j.Params.GlobalBatch)
		c.job, c.epoch, c.plan = j.ID, j.Epoch, &p
	}
	return *c.plan
}

// BuildAssignment is worker id's assignment in state s: its rank in the
// current ring and its part of every remaining step of the epoch. It is a
// pure function of the state (plus the order cache).
func BuildAssignment(s *State, id string, orders *orderCache) *pb.GetAssignmentResponse {
	a := &pb.GetAssignmentResponse{Generation: s.Generation, Rank: int32(s.Rank(id)), Members: s.ringAddrs(),
		MemberIds: slices.Clone(s.Ring)}
	j := s.Job
	if j == nil {
		return a
	}
	a.JobId, a.ConfigJson, a.Phase = j.ID, slices.Clone(j.ConfigJSON), phasePB[j.Phase]
	a.Epoch, a.TotalEpochs = uint32(j.Epoch), uint32(j.Params.Epochs)
	a.StartStep, a.TotalSteps = uint32(j.NextStep), uint32(j.StepsInEpoch())
	a.NormMean, a.NormStd = slices.Clone(j.Mean[:]), slices.Clone(j.Std[:]) // no aliasing of the state
	a.ManifestDigest = j.ManifestDigest
	a.CheckpointInterval = uint32(j.Params.CheckpointInterval)
	a.Latest = checkpointPB(j.Checkpoint)
	a.Resume = j.Resume
	a.Classes = uint32(j.Classes)
	if j.Resume {
		a.Restore = checkpointPB(j.Checkpoint)
	}
	if j.Phase != PhasePretraining || a.Rank < 0 || j.PretrainDone() {
		return a
	}
	plan := orders.get(j)
	classOf := j.labeledClasses()
	for step := j.NextStep; step < plan.Steps(); step++ {
		batch := plan.Batch(step)
		part := job.SplitRank(batch, int(a.Rank), len(s.Ring))
		ids := make([]int32, len(part))
		for i, v := range part {
			ids[i] = int32(v)
		}
		sh := &pb.StepShard{Step: uint32(step), ImageIds: ids, GlobalCount: uint32(len(batch))}
		labeledShard(sh, j, classOf, int(a.Rank), len(s.Ring), plan.Steps())
		a.Steps = append(a.Steps, sh)
	}
	return a
}

// labeledShard adds rank's part of the step's labeled batch (the joint
// mode's job.LabeledBatch, split like the images) to sh.
func labeledShard(sh *pb.StepShard, j *Job, class map[int]int, rank, world, steps int) {
	if j.Params.LabeledBatch == 0 || len(j.LabeledIDs) == 0 {
		return
	}
	batch := job.LabeledBatch(j.LabeledIDs, j.Params.Seed, j.Epoch, int(sh.Step), steps, j.Params.LabeledBatch)
	for _, id := range job.SplitRank(batch, rank, world) {
		sh.LabeledIds = append(sh.LabeledIds, int32(id))
		sh.LabeledClasses = append(sh.LabeledClasses, int32(class[id]))
	}
	sh.LabeledGlobalCount = uint32(len(batch))
}

// assignment answers GetAssignment: it returns as soon as the worker's
// (generation, epoch, phase) differs from what it knows, else when the wait
// (capped by AssignmentWait) elapses, with the current assignment.
func (n *Node) assignment(ctx context.Context, req *pb.GetAssignmentRequest) (*pb.GetAssignmentResponse, error) {
	wait := n.cfg.AssignmentWait
	if d := req.GetWait(); d != nil && d.AsDuration() >= 0 && d.AsDuration() < wait {
		wait = d.AsDuration()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if err := n.requireLeader(); err != nil {
			return nil, err
		}
		changed := n.fsm.Changed()
		var a *pb.GetAssignmentResponse
		var known bool
		var fenced error
		n.fsm.View(func(s *State) {
			_, known = s.Workers[req.GetWorkerId()]
			fenced = s.checkIncarnation("get assignment", req.GetWorkerId(), req.GetIncarnation())
			if known && fenced == nil {
				a = BuildAssignment(s, req.GetWorkerId(), &n.orders)
			}
		})
		if fenced != nil {
			return nil, fenced
		}
		if !known {
			return nil, fmt.Errorf("get assignment of %q: %w", req.GetWorkerId(), client.ErrUnknownWorker)
		}
		if a.GetGeneration() != req.GetKnownGeneration() || a.GetEpoch() != req.GetKnownEpoch() || a.GetPhase() != req.GetKnownPhase() {
			return a, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return a, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("get assignment of %q: %w", req.GetWorkerId(), ctx.Err())
		case <-n.stop:
			return nil, fmt.Errorf("get assignment of %q: %w", req.GetWorkerId(), client.ErrShutdown)
		}
	}
}

// durationPB converts a duration for the wire.
func durationPB(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// labeledClasses maps the job's labeled images to their classes (nil
// outside the joint mode).
func (j *Job) labeledClasses() map[int]int {
	if j.Params.LabeledBatch == 0 {
		return nil
	}
	class := make(map[int]int, len(j.LabeledIDs))
	for i, id := range j.LabeledIDs {
		class[id] = j.LabeledClasses[i]
	}
	return class
}
