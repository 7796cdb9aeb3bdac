package operator

import (
	"context"
	"fmt"
	"sync"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Coordinator is what the operator asks of a coordinator group;
// *client.Client (coordinator/client) is one.
type Coordinator interface {
	SubmitJob(ctx context.Context, configJSON []byte) (string, error)
	JobStatus(ctx context.Context) (*pb.JobStatusResponse, error)
	FetchResults(ctx context.Context, jobID string) (*pb.FetchResultsResponse, error)
	CancelJob(ctx context.Context, jobID string) (*pb.CancelJobResponse, error)
	// DownloadArtifact writes one of a job's result files into dir,
	// checked against its digest and size (for spec.results).
	DownloadArtifact(ctx context.Context, dir string, a *pb.Artifact) (bool, error)
	Close() error
}

// Dialer returns a client of the coordinator group reached at addr
// (HOST:PORT, a Service's name).
type Dialer func(addr string) (Coordinator, error)

// coordinators keeps one client per group address.
type coordinators struct {
	dial Dialer
	mu   sync.Mutex
	byAd map[string]Coordinator
}

// get returns the group's client, dialling it the first time.
func (c *coordinators) get(addr string) (Coordinator, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.byAd[addr]; ok {
		return cl, nil
	}
	cl, err := c.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial coordinators %s: %w", addr, err)
	}
	if c.byAd == nil {
		c.byAd = map[string]Coordinator{}
	}
	c.byAd[addr] = cl
	return cl, nil
}

// close closes every client.
func (c *coordinators) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cl := range c.byAd {
		_ = cl.Close()
		delete(c.byAd, addr)
	}
}
