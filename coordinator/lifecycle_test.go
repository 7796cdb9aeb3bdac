package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// TestLeaseExpiryResplits registers three workers, completes two steps,
// lets one worker's lease expire and checks: the generation is bumped once,
// the survivors' assignments cover exactly the remaining images of the
// epoch, a report from the old generation is refused as stale, and status
// no longer lists the dead worker.
func TestLeaseExpiryResplits(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	stops := map[string]func(){}
	for _, w := range []string{"a", "b", "c"} {
		if _, err := cl.Register(ctx, w, w+":9"); err != nil {
			t.Fatal(err)
		}
		stops[w] = heartbeater(t, cl, w, 100*time.Millisecond)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	a := startPretraining(t, ctx, cl, "a", testConfig(t, 1, 8, 100))
	if len(a.GetMembers()) != 3 {
		t.Fatalf("ring of %d members, want 3", len(a.GetMembers()))
	}
	for step := range uint32(2) {
		if _, err := report(ctx, cl, "a", a, 0, step); err != nil {
			t.Fatal(err)
		}
	}
	stops["b"]()
	delete(stops, "b")
	next, err := cl.GetAssignment(ctx, &pb.GetAssignmentRequest{WorkerId: "a", KnownGeneration: a.GetGeneration(),
		KnownEpoch: a.GetEpoch(), KnownPhase: a.GetPhase(), Wait: durationPB(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if next.GetGeneration() != a.GetGeneration()+1 || len(next.GetMembers()) != 2 || next.GetStartStep() != 2 {
		t.Fatalf("after b's lease: generation %d (was %d), %d members, start %d", next.GetGeneration(), a.GetGeneration(), len(next.GetMembers()), next.GetStartStep())
	}
	checkCoversRemaining(t, ctx, cl, []string{"a", "c"}, 40, 8, 2)
	if _, err := report(ctx, cl, "a", a, 0, 2); !errors.Is(err, cluster.ErrStaleGeneration) {
		t.Fatalf("report from the old generation: %v, want cluster.ErrStaleGeneration", err)
	}
	if _, err := cl.Heartbeat(ctx, "b", 0); !errors.Is(err, client.ErrUnknownWorker) {
		t.Fatalf("heartbeat of the expired worker: %v, want client.ErrUnknownWorker", err)
	}
	st, err := cl.JobStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetWorkers()) != 2 || st.GetNextStep() != 2 || st.GetGeneration() != next.GetGeneration() {
		t.Fatalf("status: %d workers, next step %d, generation %d", len(st.GetWorkers()), st.GetNextStep(), st.GetGeneration())
	}
}

// checkCoversRemaining checks the workers' assignments partition the
// images of steps from..end of epoch 0 exactly.
func checkCoversRemaining(t *testing.T, ctx context.Context, cl *client.Client, workers []string, n, batch, from int) {
	t.Helper()
	plan := job.PlanEpoch(ids(n), experimentSeed(t), 0, batch)
	var want, got []int
	for s := from; s < plan.Steps(); s++ {
		want = append(want, plan.Batch(s)...)
	}
	for _, w := range workers {
		a, err := cl.GetAssignment(ctx, &pb.GetAssignmentRequest{WorkerId: w})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range a.GetSteps() {
			for _, id := range st.GetImageIds() {
				got = append(got, int(id))
			}
		}
	}
	sort.Ints(want)
	sort.Ints(got)
	if !slices.Equal(got, want) {
		t.Fatalf("assignments cover %v, want exactly %v", got, want)
	}
}

// experimentSeed is the seed of testConfig.
func experimentSeed(t *testing.T) uint64 {
	var c struct{ Seed uint64 }
	if err := json.Unmarshal(testConfig(t, 1, 8, 1), &c); err != nil {
		t.Fatal(err)
	}
	return c.Seed
}

// TestJobLifecycle runs a whole job on one embedded node with a worker
// driven by the Client: pretraining with checkpoints, then baseline,
// fine-tuning (given the committed checkpoint's bytes) and evaluation,
// ending done with the results (and no artifacts: these Phases list no
// result files); images are served by id.
func TestJobLifecycle(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	stop := heartbeater(t, cl, "w", 100*time.Millisecond)
	defer stop()
	a := startPretraining(t, ctx, cl, "w", testConfig(t, 2, 16, 2))
	imgs, err := cl.FetchImages(ctx, []int32{3, 5})
	if err != nil || len(imgs) != 2 || string(imgs[1].GetData()) != "image 5" {
		t.Fatalf("fetch images: %v %v", err, imgs)
	}
	final := runWorker(t, ctx, cl, "w", a)
	eventually(t, 20*time.Second, "the job to finish", func() bool {
		r, err := cl.FetchResults(ctx, "")
		return err == nil && r.GetPhase() == pb.Phase_PHASE_DONE
	})
	r, _ := cl.FetchResults(ctx, "")
	if !strings.Contains(string(r.GetReportJson()), `"pretrained_bytes":`+jsonInt(len(final))) ||
		r.GetPretrained().GetEpoch() != 2 || string(r.GetBaselineJson()) != `{"accuracy":0.4}` || len(r.GetArtifacts()) != 0 {
		t.Fatalf("results: report %s, pretrained %v, baseline %s, artifacts %v (want none: the Phases list no files)",
			r.GetReportJson(), r.GetPretrained(), r.GetBaselineJson(), r.GetArtifacts())
	}
}

func jsonInt(v int) string { b, _ := json.Marshal(v); return string(b) }

// runWorker plays a worker: it completes every step of every epoch,
// checkpoints every interval and at the end, and returns the final blob.
func runWorker(t *testing.T, ctx context.Context, cl *client.Client, w string, a *pb.GetAssignmentResponse) []byte {
	t.Helper()
	var blob []byte
	for a.GetEpoch() < a.GetTotalEpochs() {
		for _, st := range a.GetSteps() {
			if _, err := report(ctx, cl, w, a, a.GetEpoch(), st.GetStep()); err != nil {
				t.Fatal(err)
			}
			done := st.GetStep() + 1
			if done%a.GetCheckpointInterval() == 0 || done == a.GetTotalSteps() {
				blob = []byte(strings.Repeat("w", 1000+int(a.GetEpoch()*100+done)))
				hdr := &pb.CheckpointHeader{WorkerId: w, Generation: a.GetGeneration(), Epoch: a.GetEpoch(), Step: done}
				if _, err := cl.CommitCheckpoint(ctx, hdr, blob); err != nil {
					t.Fatal(err)
				}
			}
		}
		next, err := cl.GetAssignment(ctx, &pb.GetAssignmentRequest{WorkerId: w, KnownGeneration: a.GetGeneration(),
			KnownEpoch: a.GetEpoch(), KnownPhase: a.GetPhase()})
		if err != nil {
			t.Fatal(err)
		}
		a = next
	}
	return blob
}

// TestWorkersGoneFailsAfterBound lets the only worker leave during
// pretraining: the job waits, then fails with a reason after WorkerWait.
func TestWorkersGoneFailsAfterBound(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.WorkerWait = 500 * time.Millisecond })
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	startPretraining(t, ctx, cl, "w", testConfig(t, 1, 8, 1))
	if _, err := cl.Leave(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	st, err := cl.JobStatus(ctx)
	if err != nil || st.GetWaitingSince() == nil {
		t.Fatalf("status after the last worker left: %v, waiting since %v", err, st.GetWaitingSince())
	}
	eventually(t, 10*time.Second, "the job to fail", func() bool {
		r, err := cl.FetchResults(ctx, "")
		return err == nil && r.GetPhase() == pb.Phase_PHASE_FAILED && strings.Contains(r.GetFailureReason(), "no workers")
	})
}

// TestLogCompaction applies many entries with a low snapshot threshold and
// checks raft compacts the log (bounded length), and a restart restores the
// state from the snapshot plus the trailing log. The worker never
// heartbeats, so its lease is long: a lease expiring mid-test would remove
// it (and advance the generation) between the two reads of the state.
func TestLogCompaction(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 64, 16, 50*time.Millisecond
		cfg.Lease = time.Hour
	})
	c.waitLeader(10 * time.Second)
	n := c.node(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 400 {
		if _, err := n.propose(ctx, &RegisterWorker{ID: "w", RingAddr: jsonInt(i), Time: t0}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "log compaction", func() bool {
		first, _ := n.rp.store.FirstIndex()
		last, _ := n.rp.store.LastIndex()
		return first > 1 && last-first+1 <= 64+16+8
	})
	want := n.State()
	c.stop(0)
	c.restart(0)
	c.waitLeader(10 * time.Second)
	eventually(t, 10*time.Second, "the log after the snapshot to be applied", func() bool {
		return c.node(0).State().Index >= want.Index
	})
	got := c.node(0).State()
	w, ok := got.Workers["w"]
	if !ok || got.Generation != want.Generation || w.RingAddr != "399" {
		t.Fatalf("after restart: generation %d (want %d), worker w %+v (registered %v), want ring addr 399", got.Generation, want.Generation, w, ok)
	}
}

// TestAllWorkersDieResumeFromCheckpoint: the only worker dies after a
// checkpoint and one more step; the job waits, and a returning worker is
// told to resume from the checkpoint at the checkpoint's position.
func TestAllWorkersDieResumeFromCheckpoint(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	a := startPretraining(t, ctx, cl, "w1", testConfig(t, 1, 8, 2))
	for step := range uint32(3) {
		if _, err := report(ctx, cl, "w1", a, 0, step); err != nil {
			t.Fatal(err)
		}
		if step == 1 {
			hdr := &pb.CheckpointHeader{WorkerId: "w1", Generation: a.GetGeneration(), Step: 2}
			if _, err := cl.CommitCheckpoint(ctx, hdr, []byte("weights at step 2")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// No heartbeats: w1's lease expires.
	eventually(t, 5*time.Second, "the job to wait for workers", func() bool {
		st, err := cl.JobStatus(ctx)
		return err == nil && st.GetWaitingSince() != nil && st.GetNextStep() == 2
	})
	stop := heartbeater(t, cl, "w2", 100*time.Millisecond)
	defer stop()
	if _, err := cl.Register(ctx, "w2", "w2:9"); err != nil {
		t.Fatal(err)
	}
	b, err := cl.GetAssignment(ctx, &pb.GetAssignmentRequest{WorkerId: "w2"})
	if err != nil {
		t.Fatal(err)
	}
	if !b.GetResume() || b.GetStartStep() != 2 || b.GetRestore().GetStep() != 2 || len(b.GetSteps()) != 3 {
		t.Fatalf("returning worker: resume %v start %d restore %v steps %d", b.GetResume(), b.GetStartStep(), b.GetRestore(), len(b.GetSteps()))
	}
	_, data, err := cl.FetchCheckpoint(ctx, b.GetRestore().GetDigest())
	if err != nil || string(data) != "weights at step 2" {
		t.Fatalf("fetch the restore checkpoint: %q %v", data, err)
	}
}
