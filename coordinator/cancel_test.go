package coordinator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestCancelJob cancels a job while the leader runs its baseline phase:
// the job fails with the reason naming the caller, the phase in flight is
// stopped (its context ends) and the leader runs it no more, a second
// cancel is refused as the job is over, and the cluster takes the next
// job.
func TestCancelJob(t *testing.T) {
	phases := &fakePhases{n: 40, blockBaseline: true, inBaseline: make(chan struct{}), baselineEnded: make(chan struct{})}
	c := newCluster(t, 3, func(cfg *Config) { cfg.Phases = phases })
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	stop := heartbeater(t, cl, "w", 100*time.Millisecond)
	defer stop()
	a := startPretraining(t, ctx, cl, "w", testConfig(t, 1, 16, 100))
	runWorker(t, ctx, cl, "w", a)
	select {
	case <-phases.inBaseline:
	case <-ctx.Done():
		t.Fatal("baseline never started")
	}
	res, err := cl.CancelJob(ctx, "")
	if err != nil || res.GetPhase() != pb.Phase_PHASE_BASELINE || res.GetJobId() != a.GetJobId() {
		t.Fatalf("CancelJob = %v, %v; want job %s cancelled in the baseline phase", res, err, a.GetJobId())
	}
	r, err := cl.FetchResults(ctx, "")
	if err != nil || r.GetPhase() != pb.Phase_PHASE_FAILED || !strings.HasPrefix(r.GetFailureReason(), "cancelled by a plaintext client at 127.0.0.1:") {
		t.Fatalf("after cancel: %v, %v", r, err)
	}
	select {
	case <-phases.baselineEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("the baseline phase in flight was not stopped by the cancel")
	}
	time.Sleep(1500 * time.Millisecond) // a driver tick: a phase still wanted would start again
	phases.mu.Lock()
	baselines := phases.baselines
	phases.mu.Unlock()
	if baselines != 1 {
		t.Fatalf("baseline ran %d times, want 1 (the cancelled run stopped, none after it)", baselines)
	}
	if _, err := cl.CancelJob(ctx, ""); !errors.Is(err, client.ErrWrongPhase) || !strings.Contains(err.Error(), "already failed") {
		t.Fatalf("second cancel: %v, want the job named as already over", err)
	}
	id, err := cl.SubmitJob(ctx, testConfig(t, 2, 16, 100))
	if err != nil || id == a.GetJobId() {
		t.Fatalf("next job after a cancel: %q, %v", id, err)
	}
	if _, err := cl.CancelJob(ctx, "job-none"); err == nil {
		t.Fatal("cancelling an unknown job id succeeded")
	}
}
