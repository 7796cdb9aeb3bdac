package coordinator

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// prepCache keeps the leader's Phases.Prepare result of the current job
// (for its ImageReader), computed at most once per job.
type prepCache struct {
	mu   sync.Mutex
	job  string
	prep job.Prepared
}

// prepared returns the Prepare result of job id, calling Phases.Prepare
// when it is not cached.
func (n *Node) prepared(ctx context.Context, id string, configJSON []byte) (job.Prepared, error) {
	n.prep.mu.Lock()
	defer n.prep.mu.Unlock()
	if n.prep.job == id {
		return n.prep.prep, nil
	}
	if n.cfg.Phases == nil {
		return job.Prepared{}, fmt.Errorf("prepare job %s: no Phases configured on this coordinator: %w", id, client.ErrNoImages)
	}
	p, err := n.cfg.Phases.Prepare(ctx, configJSON)
	if err != nil {
		return job.Prepared{}, fmt.Errorf("prepare job %s: %w", id, err)
	}
	n.prep.job, n.prep.prep = id, p
	return p, nil
}

// fetchImages streams the bytes of images ids of the current job.
func (n *Node) fetchImages(ctx context.Context, ids []int32, stream grpc.ServerStreamingServer[pb.FetchImagesResponse]) error {
	if err := n.requireLeader(); err != nil {
		return err
	}
	var jobID string
	var cfg []byte
	n.fsm.View(func(s *State) {
		if s.Job != nil {
			jobID, cfg = s.Job.ID, s.Job.ConfigJSON
		}
	})
	if jobID == "" {
		return fmt.Errorf("fetch images: %w", client.ErrNoJob)
	}
	p, err := n.prepared(ctx, jobID, cfg)
	if err != nil {
		return err
	}
	if p.Images == nil {
		return fmt.Errorf("fetch images of job %s: %w", jobID, client.ErrNoImages)
	}
	for _, id := range ids {
		name, data, err := p.Images.ReadImage(ctx, int(id))
		if err != nil {
			return fmt.Errorf("fetch image %d of job %s: %w", id, jobID, err)
		}
		if len(data) > client.MaxMessage-1024 {
			return fmt.Errorf("fetch image %d of job %s: %d bytes exceed the %d message limit: %w", id, jobID, len(data), client.MaxMessage, client.ErrBadJob)
		}
		if err := stream.Send(&pb.FetchImagesResponse{Id: id, Name: name, Data: data}); err != nil {
			return err
		}
	}
	return nil
}
