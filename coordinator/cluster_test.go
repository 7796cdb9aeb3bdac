package coordinator

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// startPretraining submits a job, registers worker w and waits until the
// worker's assignment is in pretraining; it returns the assignment.
func startPretraining(t *testing.T, ctx context.Context, cl *client.Client, w string, config []byte) *pb.GetAssignmentResponse {
	t.Helper()
	if _, err := cl.Register(ctx, w, w+":9"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SubmitJob(ctx, config); err != nil {
		t.Fatal(err)
	}
	var a *pb.GetAssignmentResponse
	eventually(t, 10*time.Second, "pretraining", func() bool {
		var err error
		a, err = cl.GetAssignment(ctx, &pb.GetAssignmentRequest{WorkerId: w, KnownGeneration: a.GetGeneration(),
			KnownEpoch: a.GetEpoch(), KnownPhase: a.GetPhase(), Wait: durationPB(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return a.GetPhase() == pb.Phase_PHASE_PRETRAINING && a.GetRank() == 0
	})
	return a
}

func report(ctx context.Context, cl *client.Client, w string, a *pb.GetAssignmentResponse, epoch, step uint32) (*pb.ReportProgressResponse, error) {
	return cl.ReportProgress(ctx, &pb.ReportProgressRequest{WorkerId: w, Generation: a.GetGeneration(), Epoch: epoch,
		Step: step, Rank: a.GetRank(), Samples: 8, StepTime: durationPB(10 * time.Millisecond)})
}

// TestClusterFailover runs a 3-node cluster: progress and a checkpoint are
// committed, a follower names the leader, the leader is killed, a new one is
// elected and serves the same progress and checkpoint (the blob fetched from
// a peer when it lacks it), and the killed node restarted with its data dir
// rejoins and catches up.
func TestClusterFailover(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, a := twoStepsDone(t, ctx, c, 1)
	blob := bytes.Repeat([]byte("weights!"), 100_000) // 800 kB: several chunks
	ck, err := cl.CommitCheckpoint(ctx, &pb.CheckpointHeader{WorkerId: "w1", Generation: a.GetGeneration(), Epoch: 0, Step: 2}, blob)
	if err != nil {
		t.Fatal(err)
	}
	holders := 0
	for i := range c.size() {
		if c.node(i).blobs.Has(ck.GetDigest()) {
			holders++
		}
	}
	if holders < 2 {
		t.Fatalf("checkpoint committed with the blob on %d of 3 nodes, want a quorum", holders)
	}
	eventually(t, 10*time.Second, "the blob on every node", func() bool {
		for i := range c.size() {
			if !c.node(i).blobs.Has(ck.GetDigest()) {
				return false
			}
		}
		return true
	})
	checkFollowerNamesLeader(t, ctx, c, leader)

	killed := time.Now()
	c.stop(leader)
	if _, err := report(ctx, cl, "w1", a, 0, 2); err != nil {
		t.Fatalf("report after leader death: %v", err)
	}
	t.Logf("leader failover: next write committed %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	next := c.waitLeader(10 * time.Second)
	st := c.node(next).State()
	if st.Job.NextStep != 3 || st.Job.Checkpoint == nil || st.Job.Checkpoint.Digest != ck.GetDigest() {
		t.Fatalf("new leader: next step %d, checkpoint %+v; want 3 and %s", st.Job.NextStep, st.Job.Checkpoint, ck.GetDigest())
	}
	// The new leader loses its copy: it must fetch it from the live peer.
	os.Remove(filepath.Join(c.dataDir(next), "blobs", ck.GetDigest()))
	info, data, err := cl.FetchCheckpoint(ctx, "")
	if err != nil || info.GetDigest() != ck.GetDigest() || !bytes.Equal(data, blob) {
		t.Fatalf("fetch latest checkpoint from the new leader: %v (digest %s, %d bytes)", err, info.GetDigest(), len(data))
	}

	c.restart(leader)
	want := c.node(next).State().Index
	eventually(t, 10*time.Second, "the restarted node to catch up", func() bool {
		s := c.node(leader).State()
		return s.Index >= want && s.Job != nil && s.Job.NextStep == 3
	})
	eventually(t, 10*time.Second, "the restarted node to hold the checkpoint", func() bool {
		return c.node(leader).blobs.Has(ck.GetDigest())
	})
}

// checkFollowerNamesLeader calls a follower directly: it must answer with
// the leader's address (and a Client follows it).
func checkFollowerNamesLeader(t *testing.T, ctx context.Context, c *tcluster, leader int) {
	t.Helper()
	follower := (leader + 1) % c.size()
	conn, err := grpc.NewClient(c.node(follower).Addr(), client.DialOptions(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = pb.NewCoordinatorServiceClient(conn).Heartbeat(ctx, &pb.HeartbeatRequest{WorkerId: "w1"})
	var nl *client.NotLeaderError
	if !errors.As(client.FromStatus(err), &nl) || nl.LeaderAddr != c.node(leader).Addr() {
		t.Fatalf("follower answered %v, want NOT_LEADER naming %s", err, c.node(leader).Addr())
	}
	only, err := dialTest([]string{c.node(follower).Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	st, err := only.JobStatus(ctx)
	if err != nil || st.GetLeaderAddr() != c.node(leader).Addr() || only.Leader() != st.GetLeaderAddr() {
		t.Fatalf("client given a follower: status %v, leader %q, calling %q", err, st.GetLeaderAddr(), only.Leader())
	}
}

// TestDriverResumesOnNewLeader kills the leader while it runs the baseline
// phase: the new leader's driver redoes the phase from the replicated state
// and the job completes with the committed checkpoint as the pretrained
// model.
func TestDriverResumesOnNewLeader(t *testing.T) {
	phases := &fakePhases{n: 40, blockBaseline: true, inBaseline: make(chan struct{})}
	c := newCluster(t, 3, func(cfg *Config) { cfg.Phases = phases })
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs())
	defer cl.Close()
	stop := heartbeater(t, cl, "w", 100*time.Millisecond)
	defer stop()
	a := startPretraining(t, ctx, cl, "w", testConfig(t, 1, 16, 100))
	final := runWorker(t, ctx, cl, "w", a)
	select {
	case <-phases.inBaseline:
	case <-ctx.Done():
		t.Fatal("baseline never started")
	}
	c.stop(c.waitLeader(10 * time.Second))
	eventually(t, 30*time.Second, "the job to finish on the new leader", func() bool {
		r, err := cl.FetchResults(ctx, "")
		return err == nil && r.GetPhase() == pb.Phase_PHASE_DONE
	})
	phases.mu.Lock()
	defer phases.mu.Unlock()
	if phases.baselines != 2 || !bytes.Equal(phases.finetuned, final) {
		t.Fatalf("baseline ran %d times (want 2), fine-tuned %d bytes (want the final checkpoint's %d)",
			phases.baselines, len(phases.finetuned), len(final))
	}
}
