package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/bytesize"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// coordinatorServer implements CoordinatorService over a Node. Every
// handler returns errors through client.Status.
type coordinatorServer struct {
	pb.UnimplementedCoordinatorServiceServer
	n *Node
}

// RegisterWorker adds or re-adds a worker and grants it a lease.
func (s *coordinatorServer) RegisterWorker(ctx context.Context, req *pb.RegisterWorkerRequest) (*pb.RegisterWorkerResponse, error) {
	if req.GetWorkerId() == "" || req.GetRingAddr() == "" {
		return nil, client.Status(fmt.Errorf("register worker: worker_id and ring_addr are required: %w", client.ErrBadRequest))
	}
	if len(req.GetWorkerId()) > maxWorkerID {
		return nil, client.Status(fmt.Errorf("register worker: worker_id of %d bytes, at most %d: %w", len(req.GetWorkerId()), maxWorkerID, client.ErrBadRequest))
	}
	if _, _, err := net.SplitHostPort(req.GetRingAddr()); err != nil || len(req.GetRingAddr()) > maxWorkerID+8 {
		return nil, client.Status(fmt.Errorf("register worker %s: ring_addr %.80q is not HOST:PORT: %w", req.GetWorkerId(), req.GetRingAddr(), client.ErrBadRequest))
	}
	if err := s.n.requireLeader(); err != nil {
		return nil, client.Status(err)
	}
	if err := s.n.admitWorker(req.GetWorkerId()); err != nil {
		return nil, client.Status(err)
	}
	now := time.Now()
	s.n.leases.renew(req.GetWorkerId(), now)
	res, err := s.n.propose(ctx, &RegisterWorker{ID: req.GetWorkerId(), RingAddr: req.GetRingAddr(), Incarnation: req.GetIncarnation(), Time: now})
	if err != nil {
		return nil, client.Status(err)
	}
	s.n.log.Info("worker registered", "worker", req.GetWorkerId(), "ring", req.GetRingAddr(), "generation", res.Generation)
	return &pb.RegisterWorkerResponse{
		HeartbeatInterval: durationPB(s.n.cfg.HeartbeatInterval), Lease: durationPB(s.n.cfg.Lease), Generation: res.Generation,
	}, nil
}

// maxWorkerID bounds a worker id (a DNS name or a pod name fits).
const maxWorkerID = 253

// admitWorker refuses a new worker id beyond MaxWorkers (a known id
// re-registering is always admitted).
func (n *Node) admitWorker(id string) error {
	var known bool
	var count int
	n.fsm.View(func(s *State) { _, known = s.Workers[id]; count = len(s.Workers) })
	if !known && count >= n.cfg.MaxWorkers {
		return fmt.Errorf("register worker %s: %d workers registered, the most this coordinator takes (MaxWorkers): %w", id, count, client.ErrTooManyWorkers)
	}
	return nil
}

// Heartbeat renews a lease; NOT_FOUND when the worker is not registered.
func (s *coordinatorServer) Heartbeat(_ context.Context, req *pb.HeartbeatRequest) (*pb.HeartbeatResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, client.Status(err)
	}
	resp := &pb.HeartbeatResponse{}
	var known bool
	var fenced error
	s.n.fsm.View(func(st *State) {
		_, known = st.Workers[req.GetWorkerId()]
		fenced = st.checkIncarnation("heartbeat", req.GetWorkerId(), req.GetIncarnation())
		resp.Generation = st.Generation
		if st.Job != nil {
			resp.Phase, resp.JobId = phasePB[st.Job.Phase], st.Job.ID
		}
	})
	if fenced != nil {
		return nil, client.Status(fenced)
	}
	if !known {
		return nil, client.Status(fmt.Errorf("heartbeat of %q: %w", req.GetWorkerId(), client.ErrUnknownWorker))
	}
	s.n.leases.renew(req.GetWorkerId(), time.Now())
	return resp, nil
}

// LeaveWorker removes a worker at once (graceful shutdown).
func (s *coordinatorServer) LeaveWorker(ctx context.Context, req *pb.LeaveWorkerRequest) (*pb.LeaveWorkerResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, client.Status(err)
	}
	res, err := s.n.propose(ctx, &RemoveWorkers{IDs: []string{req.GetWorkerId()}, Reason: "left", Incarnation: req.GetIncarnation(), Time: time.Now()})
	if err != nil {
		return nil, client.Status(err)
	}
	s.n.leases.forget(req.GetWorkerId())
	s.n.log.Info("worker left", "worker", req.GetWorkerId(), "generation", res.Generation)
	return &pb.LeaveWorkerResponse{Generation: res.Generation}, nil
}

// GetAssignment long-polls for the worker's assignment.
func (s *coordinatorServer) GetAssignment(ctx context.Context, req *pb.GetAssignmentRequest) (*pb.GetAssignmentResponse, error) {
	a, err := s.n.assignment(ctx, req)
	return a, client.Status(err)
}

// ReportProgress records a rank's timings and completes the step.
func (s *coordinatorServer) ReportProgress(ctx context.Context, req *pb.ReportProgressRequest) (*pb.ReportProgressResponse, error) {
	res, err := s.n.reportProgress(ctx, req)
	if err != nil {
		return nil, client.Status(err)
	}
	return &pb.ReportProgressResponse{Generation: res.Generation, Epoch: uint32(res.Epoch), NextStep: uint32(res.NextStep)}, nil
}

// CommitCheckpoint stores, replicates and commits a checkpoint.
func (s *coordinatorServer) CommitCheckpoint(stream grpc.ClientStreamingServer[pb.CommitCheckpointRequest, pb.CommitCheckpointResponse]) error {
	ck, err := s.n.commitCheckpoint(stream.Context(), stream)
	if err != nil {
		return client.Status(err)
	}
	return stream.SendAndClose(&pb.CommitCheckpointResponse{Checkpoint: ck})
}

// FetchCheckpoint streams a checkpoint from any coordinator.
func (s *coordinatorServer) FetchCheckpoint(req *pb.FetchCheckpointRequest, stream grpc.ServerStreamingServer[pb.FetchCheckpointResponse]) error {
	return client.Status(s.n.fetchCheckpoint(stream.Context(), req.GetDigest(), stream))
}

// FetchImages streams image bytes by id (leader only: it holds the data).
func (s *coordinatorServer) FetchImages(req *pb.FetchImagesRequest, stream grpc.ServerStreamingServer[pb.FetchImagesResponse]) error {
	return client.Status(s.n.fetchImages(stream.Context(), req.GetIds(), stream))
}

// SubmitJob validates the config and starts a job.
func (s *coordinatorServer) SubmitJob(ctx context.Context, req *pb.SubmitJobRequest) (*pb.SubmitJobResponse, error) {
	id, err := s.n.submit(ctx, req.GetSpec().GetConfigJson())
	if err != nil {
		return nil, client.Status(err)
	}
	return &pb.SubmitJobResponse{JobId: id}, nil
}

// JobStatus reports the job as the ready leader sees it. Any other node's
// applied state may lag what was committed (a restarted node holds its last
// snapshot until the leader catches it up; a wiped one, nothing), so a
// follower tells the caller where the leader is, and a leader that is not
// ready yet to retry. A node that knows no leader answers UNAVAILABLE
// naming its applied index, unless the caller allows a stale answer
// (allow_stale: operators during an election): then its own applied state,
// with an empty leader_id.
func (s *coordinatorServer) JobStatus(_ context.Context, req *pb.JobStatusRequest) (*pb.JobStatusResponse, error) {
	err := s.n.requireRead("job status")
	if err == nil {
		return s.n.status(), nil
	}
	if !errors.Is(err, client.ErrNoLeader) || !req.GetAllowStale() {
		return nil, client.Status(err)
	}
	resp := s.n.status()
	resp.LeaderId, resp.LeaderAddr = "", ""
	return resp, nil
}

// requireRead is requireLeader for a read of the job's state (op names
// it): on a node that knows no leader, ErrNoLeader naming how far its
// applied state may be behind.
func (n *Node) requireRead(op string) error {
	err := n.requireLeader()
	if err == nil {
		return nil
	}
	if id, _ := n.leader(); id != "" {
		return err
	}
	return fmt.Errorf("%s: %w: coordinator %s has applied raft index %d of %d in its log and cannot tell whether the group committed more",
		op, client.ErrNoLeader, n.cfg.ID, n.rp.raft.AppliedIndex(), n.rp.raft.LastIndex())
}

// FetchResults returns the phase results as the ready leader holds them
// (another node's applied state may lag, as for JobStatus; clients follow
// the leader): the current job's, or a finished earlier job's from
// State.History.
func (s *coordinatorServer) FetchResults(_ context.Context, req *pb.FetchResultsRequest) (*pb.FetchResultsResponse, error) {
	if err := s.n.requireRead("fetch results"); err != nil {
		return nil, client.Status(err)
	}
	var resp *pb.FetchResultsResponse
	var err error
	s.n.fsm.View(func(st *State) { resp, err = st.results(req.GetJobId(), s.n.cfg.KeepJobs) })
	return resp, client.Status(err)
}

// results answers FetchResults for job id ("" = the current job) from the
// current job or History; keep (this node's KeepJobs) is named when the
// job is in neither.
func (s *State) results(id string, keep int) (*pb.FetchResultsResponse, error) {
	j, err := s.currentJob(id)
	if err == nil {
		resp := &pb.FetchResultsResponse{
			JobId: j.ID, Phase: phasePB[j.Phase], FailureReason: j.FailureReason,
			BaselineJson: slices.Clone(j.BaselineJSON), ReportJson: slices.Clone(j.ReportJSON),
			Artifacts: artifactsPB(j.Artifacts),
		}
		if j.FinalCheckpoint() {
			resp.Pretrained = checkpointPB(j.Checkpoint)
		}
		return resp, nil
	}
	if id == "" {
		return nil, fmt.Errorf("fetch results: %w", err)
	}
	r, ok := s.finishedJob(id)
	if !ok {
		return nil, fmt.Errorf("fetch results of job %q: %w: the coordinators keep the current job and the last %d finished ones (KeepJobs, whorl coordinator --keep-jobs)",
			id, client.ErrNoJob, keep)
	}
	return &pb.FetchResultsResponse{
		JobId: r.ID, Phase: phasePB[r.Phase], FailureReason: r.FailureReason,
		BaselineJson: slices.Clone(r.BaselineJSON), ReportJson: slices.Clone(r.ReportJSON),
		Artifacts: artifactsPB(r.Artifacts), Pretrained: checkpointPB(r.Pretrained),
	}, nil
}

// submit validates a job config and proposes the job.
func (n *Node) submit(ctx context.Context, configJSON []byte) (string, error) {
	if err := n.requireLeader(); err != nil {
		return "", err
	}
	cfg, err := job.Parse(configJSON)
	if err != nil {
		return "", fmt.Errorf("submit job: %w: %w", client.ErrBadJob, err)
	}
	// The job is its parsed config, re-encoded (job.Digest's bytes): the
	// same job written with other whitespace or key order is the same job,
	// and its checkpoints' whorl.config_sha256 is this digest.
	canon, digest := cfg.JSON(), job.Digest(cfg)
	if err := n.admit(canon); err != nil {
		return "", err
	}
	if dc, ok := n.cfg.Phases.(DataChecker); ok {
		if err := dc.CheckData(ctx, canon); err != nil {
			return "", fmt.Errorf("submit job: %w: its data: %w", client.ErrBadJob, err)
		}
	}
	now := time.Now()
	jb := Job{
		ID:           n.newJobID(digest, now),
		ConfigJSON:   canon,
		ConfigSHA256: digest,
		SubmittedAt:  now,
		Params: JobParams{
			Seed: cfg.Seed, Epochs: cfg.Pretrain.Epochs, GlobalBatch: cfg.Pretrain.GlobalBatch,
			CheckpointInterval: cfg.CheckpointEvery,
		},
	}
	if cfg.IsJoint() {
		jb.Params.LabeledBatch = cfg.Joint.LabeledBatch
	}
	res, err := n.propose(ctx, &SubmitJob{Job: jb, Keep: n.cfg.KeepJobs})
	if err != nil {
		return "", err
	}
	if res.JobID != jb.ID {
		n.log.Info("job with this configuration already running", "job", res.JobID, "config_sha256", jb.ConfigSHA256)
		return res.JobID, nil
	}
	n.log.Info("job submitted", "job", jb.ID, "config_sha256", jb.ConfigSHA256)
	return jb.ID, nil
}

// newJobID names a new job by its config digest and submission second,
// unlike the last job's id and History's: the same configuration submitted
// again within the second its predecessor was (resubmitted after a cancel)
// gets the raft index as a suffix.
func (n *Node) newJobID(digest string, now time.Time) string {
	id := fmt.Sprintf("job-%s-%d", digest[:8], now.Unix())
	n.fsm.View(func(s *State) {
		taken := s.Job != nil && strings.HasPrefix(s.Job.ID, id)
		for _, r := range s.History {
			taken = taken || strings.HasPrefix(r.ID, id)
		}
		if taken {
			id = fmt.Sprintf("%s-%d", id, s.Index)
		}
	})
	return id
}

// admit refuses a job whose estimated peak memory on the leader exceeds
// the coordinator's JobMemoryLimit (when Phases can estimate it).
func (n *Node) admit(configJSON []byte) error {
	est, ok := n.cfg.Phases.(MemoryEstimator)
	if !ok || n.cfg.JobMemoryLimit <= 0 {
		return nil
	}
	need, parts, err := est.EstimateMemory(configJSON)
	if err != nil {
		return fmt.Errorf("submit job: estimate its memory: %w: %w", client.ErrBadJob, err)
	}
	if need > n.cfg.JobMemoryLimit {
		return fmt.Errorf("submit job: %w: its phases on the leader need an estimated %s (%s), over the coordinator's job memory limit of %s",
			client.ErrJobTooLarge, bytesize.Human(need), parts, bytesize.Human(n.cfg.JobMemoryLimit))
	}
	return nil
}

// reportProgress records timings and proposes the step's completion unless
// another rank's report already completed it.
func (n *Node) reportProgress(ctx context.Context, req *pb.ReportProgressRequest) (Result, error) {
	if err := n.requireLeader(); err != nil {
		return Result{}, err
	}
	n.leases.record(req.GetWorkerId(), int(req.GetRank()), req.GetStepTime().AsDuration(), req.GetAllreduceWait().AsDuration())
	n.leases.renew(req.GetWorkerId(), time.Now())
	var res Result
	var done bool
	var global int
	var err error
	n.fsm.View(func(s *State) {
		if _, ok := s.Workers[req.GetWorkerId()]; !ok {
			err = fmt.Errorf("report progress of %q: %w", req.GetWorkerId(), client.ErrUnknownWorker)
			return
		}
		res = s.result()
		j := s.Job
		if j == nil {
			err = fmt.Errorf("report progress: %w", client.ErrNoJob)
			return
		}
		e, st := int(req.GetEpoch()), int(req.GetStep())
		done = req.GetGeneration() == s.Generation && before(e, st, j.Epoch, j.NextStep)
		global = len(n.orders.get(j).Batch(st))
	})
	if err != nil || done {
		return res, err
	}
	n.metrics.observeStep(req, global)
	return n.propose(ctx, &StepDone{
		JobID: res.JobID, Generation: req.GetGeneration(), Epoch: int(req.GetEpoch()), Step: int(req.GetStep()),
		Metric: StepMetric{Loss: req.GetLoss(), Accuracy: req.GetAccuracy(), ClassLoss: req.GetClassLoss(), ClassAccuracy: req.GetClassAccuracy(),
			Samples: global, StepTime: req.GetStepTime().AsDuration(), Time: time.Now()},
	})
}
