package coordinator

import (
	"sort"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// statusRecent is how many metrics-history entries JobStatus returns.
const statusRecent = 20

// status builds JobStatus from the replicated state, the leader's lease
// table (heartbeats, timings, stragglers) and raft.
func (n *Node) status() *pb.JobStatusResponse {
	timings := n.leases.timingsOf(n.cfg.StragglerFactor)
	resp := &pb.JobStatusResponse{CommitIndex: n.rp.raft.CommitIndex(), StoreError: n.storeErr.Load()}
	resp.LeaderId, resp.LeaderAddr = n.leader()
	n.fsm.View(func(s *State) {
		resp.Generation, resp.GenerationChanges = s.Generation, s.GenerationChanges
		resp.Workers, resp.Stragglers = n.workerStatus(s, timings)
		resp.Coordinators = n.coordinatorInfo(s, resp.LeaderId)
		if j := s.Job; j != nil {
			fillJobStatus(resp, j)
		}
	})
	return resp
}

// fillJobStatus copies the job's phase, progress and recent metrics.
func fillJobStatus(resp *pb.JobStatusResponse, j *Job) {
	resp.JobId, resp.Phase, resp.FailureReason = j.ID, phasePB[j.Phase], j.FailureReason
	resp.Epoch, resp.TotalEpochs = uint32(j.Epoch), uint32(j.Params.Epochs)
	resp.NextStep, resp.TotalSteps = uint32(j.NextStep), uint32(j.StepsInEpoch())
	resp.LatestCheckpoint = checkpointPB(j.Checkpoint)
	if !j.WaitingSince.IsZero() && j.Phase == PhasePretraining {
		resp.WaitingSince = timestamppb.New(j.WaitingSince)
	}
	recent := j.Metrics
	if len(recent) > statusRecent {
		recent = recent[len(recent)-statusRecent:]
	}
	for _, e := range j.History {
		resp.PretextHistory = append(resp.PretextHistory, epochMetricPB(e))
	}
	for _, m := range recent {
		resp.Recent = append(resp.Recent, stepMetricPB(m))
	}
}

// workerStatus lists the workers by rank (non-members last) and the
// stragglers.
func (n *Node) workerStatus(s *State, timings map[string]Timing) ([]*pb.WorkerStatus, []string) {
	var out []*pb.WorkerStatus
	var stragglers []string
	for id, w := range s.Workers {
		ws := &pb.WorkerStatus{WorkerId: id, RingAddr: w.RingAddr, Rank: int32(s.Rank(id))}
		if at, ok := n.leases.lastSeen(id); ok {
			ws.LastHeartbeat = timestamppb.New(at)
		}
		if t, ok := timings[id]; ok {
			ws.StepTime, ws.AllreduceWait, ws.Straggler = durationPB(t.Compute), durationPB(t.Wait), t.Straggler
			if t.Straggler {
				stragglers = append(stragglers, id)
			}
		}
		out = append(out, ws)
	}
	sort.Slice(out, func(a, b int) bool {
		ra, rb := uint32(out[a].Rank), uint32(out[b].Rank) // -1 sorts last
		if ra != rb {
			return ra < rb
		}
		return out[a].WorkerId < out[b].WorkerId
	})
	sort.Strings(stragglers)
	return out, stragglers
}

// coordinatorInfo lists the raft servers with their gRPC addresses.
func (n *Node) coordinatorInfo(s *State, leaderID string) []*pb.CoordinatorInfo {
	f := n.rp.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []*pb.CoordinatorInfo
	for _, srv := range f.Configuration().Servers {
		suffrage := map[raft.ServerSuffrage]string{raft.Voter: "voter", raft.Nonvoter: "nonvoter", raft.Staging: "staging"}[srv.Suffrage]
		out = append(out, &pb.CoordinatorInfo{
			Id: string(srv.ID), RaftAddr: string(srv.Address), GrpcAddr: s.Coordinators[string(srv.ID)],
			Leader: string(srv.ID) == leaderID, Suffrage: suffrage,
		})
	}
	return out
}
