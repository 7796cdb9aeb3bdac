package worker

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// coordClient adapts client.Client (which follows the raft leader) to
// the Coordinator and ImageFetcher interfaces.
type coordClient struct {
	c           *client.Client
	incarnation string        // unique to this process: a restart loses the weights
	wait        time.Duration // long-poll bound of GetAssignment
}

func (c *coordClient) Register(ctx context.Context, id, ringAddr string) (Registration, error) {
	r, err := c.c.RegisterWorker(ctx, &pb.RegisterWorkerRequest{WorkerId: id, RingAddr: ringAddr, Incarnation: c.incarnation})
	if err != nil {
		return Registration{}, err
	}
	return Registration{Heartbeat: r.GetHeartbeatInterval().AsDuration(), Lease: r.GetLease().AsDuration(),
		Generation: r.GetGeneration()}, nil
}

func (c *coordClient) Heartbeat(ctx context.Context, hb HeartbeatInfo) (uint64, error) {
	r, err := c.c.HeartbeatWorker(ctx, &pb.HeartbeatRequest{WorkerId: hb.WorkerID, Generation: hb.Generation, Incarnation: c.incarnation})
	if err != nil {
		return 0, err
	}
	return r.GetGeneration(), nil
}

func (c *coordClient) GetAssignment(ctx context.Context, id string, known Known) (Assignment, error) {
	ctx, cancel := context.WithTimeout(ctx, c.wait+10*time.Second)
	defer cancel()
	r, err := c.c.GetAssignment(ctx, &pb.GetAssignmentRequest{WorkerId: id, KnownGeneration: known.Generation,
		KnownEpoch: uint32(known.Epoch), KnownPhase: known.Phase, Wait: durationpb.New(c.wait), Incarnation: c.incarnation})
	if err != nil {
		return Assignment{}, err
	}
	return assignmentFrom(r), nil
}

// assignmentFrom converts the wire assignment.
func assignmentFrom(r *pb.GetAssignmentResponse) Assignment {
	a := Assignment{JobID: r.GetJobId(), ConfigJSON: r.GetConfigJson(), Phase: r.GetPhase(),
		Generation: r.GetGeneration(), Members: r.GetMembers(), MemberIDs: r.GetMemberIds(), Rank: int(r.GetRank()),
		Epoch: int(r.GetEpoch()), TotalEpochs: int(r.GetTotalEpochs()), StartStep: int(r.GetStartStep()),
		TotalSteps: int(r.GetTotalSteps()), ManifestDigest: r.GetManifestDigest(), Resume: r.GetResume(),
		RestoreDigest: r.GetRestore().GetDigest(), CheckpointEvery: int(r.GetCheckpointInterval()), Classes: int(r.GetClasses())}
	copy(a.Mean[:], r.GetNormMean())
	copy(a.Std[:], r.GetNormStd())
	for _, s := range r.GetSteps() {
		a.Steps = append(a.Steps, StepWork{Step: int(s.GetStep()), IDs: ints(s.GetImageIds()), Global: int(s.GetGlobalCount()),
			LabeledIDs: ints(s.GetLabeledIds()), LabeledClasses: ints(s.GetLabeledClasses()), LabeledGlobal: int(s.GetLabeledGlobalCount())})
	}
	return a
}

// ints converts wire ids (nil for none).
func ints(v []int32) []int {
	if len(v) == 0 {
		return nil
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func (c *coordClient) ReportProgress(ctx context.Context, p Progress) (uint64, error) {
	r, err := c.c.ReportProgress(ctx, &pb.ReportProgressRequest{WorkerId: p.WorkerID, Generation: p.Generation,
		Epoch: uint32(p.Epoch), Step: uint32(p.Step), Rank: int32(p.Rank), Loss: float32(p.Stat.Loss), Accuracy: float32(p.Stat.Accuracy),
		ClassLoss: float32(p.Stat.ClassLoss), ClassAccuracy: float32(p.Stat.ClassAccuracy),
		Samples: uint32(p.Part), StepTime: durationpb.New(p.StepTime), AllreduceWait: durationpb.New(p.ReduceWait)})
	if err != nil {
		return 0, err
	}
	return r.GetGeneration(), nil
}

func (c *coordClient) CommitCheckpoint(ctx context.Context, m CheckpointMeta, data []byte) (string, error) {
	h := &pb.CheckpointHeader{WorkerId: m.WorkerID, Generation: m.Generation,
		Epoch: uint32(m.Position.Epoch), Step: uint32(m.Position.Step)}
	if p := m.LastStep; p != nil {
		h.LastStep = &pb.StepMetrics{Epoch: uint32(p.Epoch), Step: uint32(p.Step), Generation: p.Generation,
			Loss: float32(p.Stat.Loss), Accuracy: float32(p.Stat.Accuracy), ClassLoss: float32(p.Stat.ClassLoss), ClassAccuracy: float32(p.Stat.ClassAccuracy),
			Samples: uint32(p.Part), StepTime: durationpb.New(p.StepTime)}
	}
	ck, err := c.c.CommitCheckpoint(ctx, h, data)
	if err != nil {
		return "", err
	}
	return ck.GetDigest(), nil
}

func (c *coordClient) FetchCheckpoint(ctx context.Context, digest string) ([]byte, error) {
	_, data, err := c.c.FetchCheckpoint(ctx, digest)
	return data, err
}

func (c *coordClient) Leave(ctx context.Context, id string) error {
	_, err := c.c.LeaveWorker(ctx, &pb.LeaveWorkerRequest{WorkerId: id, Incarnation: c.incarnation})
	return err
}

// FetchImages downloads the original bytes of images by id.
func (c *coordClient) FetchImages(ctx context.Context, ids []int) (map[int][]byte, error) {
	req := make([]int32, len(ids))
	for i, id := range ids {
		req[i] = int32(id)
	}
	msgs, err := c.c.FetchImages(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make(map[int][]byte, len(msgs))
	for _, m := range msgs {
		out[int(m.GetId())] = m.GetData()
	}
	return out, nil
}
