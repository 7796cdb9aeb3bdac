package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	grpcpeer "google.golang.org/grpc/peer"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/identity"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// CancelJob ends the running job (clients only with mTLS: authz.go).
func (s *coordinatorServer) CancelJob(ctx context.Context, req *pb.CancelJobRequest) (*pb.CancelJobResponse, error) {
	id, phase, err := s.n.cancel(ctx, req.GetJobId(), caller(ctx))
	if err != nil {
		return nil, client.Status(err)
	}
	return &pb.CancelJobResponse{JobId: id, Phase: phasePB[phase]}, nil
}

// caller names a call's peer: its identity, or its address in plaintext.
func caller(ctx context.Context) string {
	if id, tls, err := identity.FromContext(ctx); err == nil && tls {
		return id.String()
	}
	if p, ok := grpcpeer.FromContext(ctx); ok {
		return "a plaintext client at " + p.Addr.String()
	}
	return "an unknown client"
}

// cancel moves the job (id, or the current one) to failed with the reason
// "cancelled by <by>"; a job already over is refused (ErrWrongPhase). A
// phase change racing the cancel is retried.
func (n *Node) cancel(ctx context.Context, id, by string) (string, Phase, error) {
	if err := n.requireLeader(); err != nil {
		return "", "", err
	}
	for range 5 {
		var jobID string
		var phase Phase
		var err error
		n.fsm.View(func(s *State) {
			var j *Job
			if j, err = s.currentJob(id); err == nil {
				jobID, phase = j.ID, j.Phase
			}
		})
		if err != nil {
			return "", "", fmt.Errorf("cancel: %w", err)
		}
		if phase.Terminal() {
			return jobID, phase, fmt.Errorf("cancel job %s: it is already %s: %w", jobID, phase, client.ErrWrongPhase)
		}
		_, err = n.propose(ctx, &SetPhase{JobID: jobID, From: phase, To: PhaseFailed, Reason: "cancelled by " + by, Time: time.Now()})
		if errors.Is(err, client.ErrWrongPhase) {
			continue // the job moved on meanwhile: cancel it in its new phase
		}
		if err == nil {
			n.log.Info("job cancelled", "job", jobID, "phase", phase, "by", by)
		}
		return jobID, phase, err
	}
	return "", "", fmt.Errorf("cancel job: the phase kept changing: %w", client.ErrWrongPhase)
}

// phaseContext returns a context that ends with ctx or as soon as job id
// leaves phase (cancelled, or failed by another path), so a phase running
// on the leader stops instead of finishing work nobody will use.
func (n *Node) phaseContext(ctx context.Context, id string, phase Phase) (context.Context, context.CancelFunc) {
	pctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			changed := n.fsm.Changed()
			still := false
			n.fsm.View(func(s *State) { still = s.Job != nil && s.Job.ID == id && s.Job.Phase == phase })
			if !still {
				cancel()
				return
			}
			select {
			case <-pctx.Done():
				return
			case <-changed:
			}
		}
	}()
	return pctx, cancel
}
