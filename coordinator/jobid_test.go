package coordinator

import (
	"context"
	"testing"
	"time"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestResubmitAfterCancelGetsNewID: the same configuration cancelled and
// submitted again within the same second is a new job with its own id (a
// WhorlJob suspended and resumed at once does this), not its predecessor's,
// and each one's results are kept.
func TestResubmitAfterCancelGetsNewID(t *testing.T) {
	phases := &fakePhases{n: 40, blockBaseline: true, inBaseline: make(chan struct{})}
	c := newCluster(t, 1, func(cfg *Config) { cfg.Phases = phases })
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	cfg := testConfig(t, 1, 16, 100)
	var ids []string
	for range 3 {
		id, err := cl.SubmitJob(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.CancelJob(ctx, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("ids %v: a resubmission took its predecessor's id", ids)
	}
	for _, id := range ids { // the current job and the finished ones in History
		r, err := cl.FetchResults(ctx, id)
		if err != nil || r.GetJobId() != id || r.GetPhase() != pb.Phase_PHASE_FAILED {
			t.Fatalf("FetchResults(%s) = %v, %v", id, r, err)
		}
	}
}
