package e2e

import (
	"context"
	"testing"
	"time"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"github.com/whorl-ml/whorl/worker"
)

// TestThreeCoordinatorsThreeWorkersCompleteJob runs the whole job on a raft
// group of three coordinators and three workers (one of them fetching its
// images from the coordinator): pretraining, baseline, fine-tuning and
// evaluation finish and the pretrained checkpoint is committed.
func TestThreeCoordinatorsThreeWorkersCompleteJob(t *testing.T) {
	dir := tinyDataDir(t, 3, 12)
	lc, client := startCoordinators(t, 3)
	ws := newWorkers(t, lc.Addrs())
	ws.start("w0", worker.DataLocal, "")
	ws.start("w1", worker.DataLocal, dir)
	ws.start("w2", worker.DataCoordinator, "")
	submit(t, client, tinyJob(t, dir, 2))
	took := waitUntil(t, 3*time.Minute, "job done", phaseIs(t, client, pb.Phase_PHASE_DONE))
	s := status(t, client)
	t.Logf("job done in %v: %s", took, describe(s))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := client.FetchResults(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.GetPretrained().GetDigest() == "" || len(res.GetReportJson()) == 0 {
		t.Errorf("results lack the pretrained checkpoint (%v) or the report (%d bytes)", res.GetPretrained(), len(res.GetReportJson()))
	}
	if s.GetGeneration() < 3 {
		t.Errorf("generation %d: want at least one per registered worker", s.GetGeneration())
	}
}

// TestLeaderKilledMidPretraining stops the raft leader in the middle of
// pretraining: a new leader is elected, the workers follow it and
// pretraining finishes without losing committed progress.
func TestLeaderKilledMidPretraining(t *testing.T) {
	dir := tinyDataDir(t, 3, 12)
	lc, client := startCoordinators(t, 3)
	ws := newWorkers(t, lc.Addrs())
	for _, id := range []string{"w0", "w1"} {
		ws.start(id, worker.DataLocal, dir)
	}
	submit(t, client, tinyJob(t, dir, 3))
	waitUntil(t, 2*time.Minute, "a few steps", func() bool {
		s := status(t, client)
		return s.GetPhase() == pb.Phase_PHASE_PRETRAINING && stepsDone(s) >= 3
	})
	before := status(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leader, err := lc.Leader(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Stop(leader); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitUntil(t, time.Minute, "progress after the leader died", func() bool {
		s := status(t, client)
		if s.GetLeaderId() == "" {
			return false // no leader known: a node's own, possibly stale, state
		}
		if s.GetPhase() == pb.Phase_PHASE_PRETRAINING && stepsDone(s) < stepsDone(before) {
			t.Fatalf("progress went back from %d to %d steps", stepsDone(before), stepsDone(s))
		}
		return s.GetPhase() != pb.Phase_PHASE_PRETRAINING || stepsDone(s) > stepsDone(before)
	})
	t.Logf("leader c%d stopped at %s; training went on after %v", leader, describe(before), time.Since(killed))
	// The rest of the job runs on the coordinators alone (the process test
	// kills the leader and lets the job finish).
	waitUntil(t, 3*time.Minute, "pretraining done", pastPretraining(t, client))
}

// TestAllWorkersGoneResumesFromCheckpoint stops every worker after a
// checkpoint was committed: the job waits, and new workers resume it from
// the latest checkpoint (they have no weights of their own).
func TestAllWorkersGoneResumesFromCheckpoint(t *testing.T) {
	dir := tinyDataDir(t, 3, 12)
	lc, client := startCoordinators(t, 1)
	ws := newWorkers(t, lc.Addrs())
	ws.start("w0", worker.DataLocal, dir)
	ws.start("w1", worker.DataLocal, dir)
	submit(t, client, tinyJob(t, dir, 3))
	waitUntil(t, 2*time.Minute, "a committed checkpoint", func() bool {
		s := status(t, client)
		return s.GetLatestCheckpoint().GetDigest() != "" && stepsDone(s) >= 3
	})
	ws.stop("w0")
	ws.stop("w1")
	waitUntil(t, 30*time.Second, "the job waits for workers", func() bool {
		s := status(t, client)
		return s.GetWaitingSince() != nil && s.GetPhase() == pb.Phase_PHASE_PRETRAINING
	})
	s := status(t, client)
	ck := s.GetLatestCheckpoint()
	t.Logf("all workers gone at %s, latest checkpoint at %d/%d", describe(s), ck.GetEpoch(), ck.GetStep())
	ws.start("w2", worker.DataLocal, dir)
	ws.start("w3", worker.DataCoordinator, "")
	waitUntil(t, 3*time.Minute, "pretraining done", pastPretraining(t, client))
}
