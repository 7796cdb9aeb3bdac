package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// recoveryTarget is the coordinator issue's bound: ring re-formed and
// training resumed within 5 s of a fault.
const recoveryTarget = 5 * time.Second

// scenarioTimeout bounds one scenario from cluster start to report.
const scenarioTimeout = 5 * time.Minute

// e2eJob is a small job: 2 pretraining epochs at 16 px on the embedded set.
func e2eJob(t *testing.T) job.Config {
	t.Helper()
	c, err := job.Preset(job.PresetQuick)
	if err != nil {
		t.Fatal(err)
	}
	c.Data.ImageSize = 16
	c.Pretrain.Epochs = 2
	c.Pretrain.GlobalBatch = 64
	c.Supervised.Epochs = 1
	c.CheckpointEvery = 5
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// fault is what a scenario does to the cluster mid-pretraining.
type fault struct {
	name string
	tag  string // host-name prefix (short: veth names are limited)
	// inject makes the fault and returns a function that ends it (or nil).
	inject func(t *testing.T, c *cluster, r *recorder) (undo func())
	// membership says the fault changes the ring, so recovery is the first
	// step of a later generation; otherwise the first step after the fault.
	membership bool
	// bounded says recovery must be within recoveryTarget, or within
	// within when that is set.
	bounded bool
	within  time.Duration
	// hold is how long the fault lasts before undo.
	hold time.Duration
	// slow and delay set up a delayed ring link into worker slow (when
	// delay > 0) for inject to switch on.
	slow  int
	delay time.Duration
}

// faults are the scenarios of issue 8.
var faults = []fault{
	{name: "leader-killed", tag: "a", inject: killLeader, bounded: true},
	{name: "worker-link-down-up", tag: "b", inject: workerLinkDown, membership: true, bounded: true, hold: 2 * time.Second},
	{name: "partition-one-coordinator", tag: "c", inject: partitionLeader, bounded: true, hold: 8 * time.Second},
	{name: "worker-10pct-loss", tag: "d", inject: workerLoss, hold: 15 * time.Second},
	// A graceful leave re-forms the ring at once, without waiting for the
	// 3 s lease to expire.
	{name: "worker-sigterm", tag: "e", inject: workerSigterm, membership: true, bounded: true, within: 2 * time.Second},
	// 10 ms more latency on every byte into worker 0 (a userspace proxy:
	// this kernel has no netem): slower steps, nothing else changes.
	{name: "worker-link-delay", tag: "f", inject: workerDelay, slow: 0, delay: 10 * time.Millisecond, hold: 10 * time.Second},
}

func TestFaults(t *testing.T) {
	Require(t)
	bin, err := whorlBin()
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"coordinator", "worker"} {
		out, _ := exec.Command(bin, cmd, "--help").CombinedOutput()
		if strings.Contains(string(out), "unknown command") {
			t.Skipf("this tree's binary has no `whorl %s` yet", cmd)
		}
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) { runFault(t, f) })
	}
}

// runFault starts 3 coordinators and 4 workers, submits the job, injects the
// fault a quarter into the first epoch, and checks the job.
func runFault(t *testing.T, f fault) {
	slow := -1
	if f.delay > 0 {
		slow = f.slow
	}
	c := newCluster(t, f.tag, 3, 4, slow, f.delay)
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	job := e2eJob(t)
	r, stop := c.record(ctx, 100*time.Millisecond)
	defer stop()
	var id string
	err := c.call(ctx, func(ctx context.Context, cl *client.Client) (err error) {
		id, err = cl.SubmitJob(ctx, job.JSON())
		return err
	})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	before, err := r.waitFor(2*time.Minute, "a quarter of epoch 0", func(s sample) bool {
		return s.phase == pb.Phase_PHASE_PRETRAINING && s.total > 0 && s.next >= s.total/4
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	undo := f.inject(t, c, r)
	if f.hold > 0 {
		time.Sleep(f.hold)
	}
	if undo != nil {
		undo()
	}
	rep := c.finish(ctx, t, id, r)
	stop()
	e := errorf(t.Errorf)
	r.checkProgress(e)
	r.checkExactlyOnce(e, job.Pretrain.Epochs, rep.Dataset.Train)
	checkRecovery(t, e, f, r, at, before.generation, rep.Dataset.Train)
}

// checkRecovery logs the scenario's measurements and wants training to
// have resumed within the target.
func checkRecovery(t *testing.T, e errorf, f fault, r *recorder, at time.Time, gen uint64, train int) {
	t.Helper()
	ok := func(v committed) bool { return true }
	if f.membership {
		ok = func(v committed) bool { return v.generation > gen }
	}
	first, err := r.recovery(at, ok)
	if err != nil {
		e("%v", err)
		return
	}
	// Training has recovered when it commits steps again: the longest time
	// without a committed step after the fault.
	stall := r.maxStall(at)
	during := "n/a"
	if d := r.medianStep(at, at.Add(f.hold)); d > 0 {
		during = fmt.Sprintf("%.0f ms", ms(d))
	}
	t.Logf("RESULT %s: recovery (longest time without a committed step after the fault) %.2f s; first step %s %.2f s after the fault; "+
		"median step %.0f ms before the fault, %s during it; train images %d, each once per epoch",
		f.name, stall.Seconds(), map[bool]string{true: "of a new ring generation", false: "committed"}[f.membership], first.Seconds(),
		ms(r.medianStep(at.Add(-time.Minute), at)), during, train)
	target := recoveryTarget
	if f.within > 0 {
		target = f.within
	}
	if f.bounded && stall > target {
		e("%s: training stalled %v after the fault, target %v", f.name, stall, target)
	}
}

// finish waits for the job to end and returns its report.
func (c *cluster) finish(ctx context.Context, t *testing.T, id string, r *recorder) experiment.Report {
	t.Helper()
	for {
		var res *pb.FetchResultsResponse
		err := c.call(ctx, func(ctx context.Context, cl *client.Client) (err error) {
			res, err = cl.FetchResults(ctx, id)
			return err
		})
		if err != nil {
			t.Fatalf("fetch results: %v", err)
		}
		switch res.GetPhase() {
		case pb.Phase_PHASE_DONE:
			var rep experiment.Report
			if err := json.Unmarshal(res.GetReportJson(), &rep); err != nil || rep.Dataset.Train == 0 {
				t.Fatalf("job %s done without a report (%v): %.200s", id, err, res.GetReportJson())
			}
			return rep
		case pb.Phase_PHASE_FAILED:
			t.Fatalf("job %s failed: %s", id, res.GetFailureReason())
		}
		select {
		case <-ctx.Done():
			s, _ := r.last()
			t.Fatalf("job %s not done within %v: phase %v epoch %d step %d/%d", id, scenarioTimeout, s.phase, s.epoch, s.next, s.total)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// leaderNode returns the current leader's node.
func leaderNode(t *testing.T, c *cluster, r *recorder) *node {
	t.Helper()
	s, ok := r.last()
	if !ok || s.leader == "" {
		t.Fatal("no leader known")
	}
	return c.coordinator(s.leader)
}

// killLeader kills every process of the raft leader's host.
func killLeader(t *testing.T, c *cluster, r *recorder) func() {
	old := leaderNode(t, c, r)
	if err := old.host.Kill(context.Background(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := r.waitFor(30*time.Second, "a new leader", func(s sample) bool { return s.leader != "" && s.leader != old.id }); err != nil {
		t.Error(err)
	}
	return nil
}

// workerLinkDown pulls worker 1's cable: the ring goes on with 3 (inject
// waits for that, then the scenario holds 2 s more); undo plugs it back and
// the worker must rejoin the ring while pretraining still runs.
func workerLinkDown(t *testing.T, c *cluster, r *recorder) func() {
	w := c.workers[1]
	if err := w.host.LinkDown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.waitFor(10*time.Second, "a ring of the 3 other workers", func(s sample) bool { return s.members == len(c.workers)-1 }); err != nil {
		t.Error(err)
	}
	return func() {
		if err := w.host.LinkUp(context.Background()); err != nil {
			t.Error(err)
		}
		up := time.Now()
		s, err := r.waitFor(20*time.Second, "worker 1 back in the ring", func(s sample) bool {
			return s.members == len(c.workers) || s.phase != pb.Phase_PHASE_PRETRAINING
		})
		switch {
		case err != nil:
			t.Error(err)
		case s.members == len(c.workers):
			t.Logf("worker 1 back in the ring %.2f s after its link came up", time.Since(up).Seconds())
		default:
			t.Logf("pretraining ended before worker 1 rejoined")
		}
	}
}

// partitionLeader cuts the raft leader off with nftables drop rules and
// checks that it stops acting as leader while the majority elects another.
func partitionLeader(t *testing.T, c *cluster, r *recorder) func() {
	old := leaderNode(t, c, r)
	ctx := context.Background()
	if err := old.host.Isolate(ctx); err != nil {
		t.Fatal(err)
	}
	isolated := time.Now()
	var majority []*node
	for _, n := range c.coords {
		if n != old {
			majority = append(majority, n)
		}
	}
	if leader, err := agreedLeader(majority, old.id, recoveryTarget); err != nil {
		t.Error(err)
	} else {
		t.Logf("the majority agrees on leader %s %.2f s after the partition", leader, time.Since(isolated).Seconds())
	}
	// The isolated node, asked on its own host (loopback, not eth0), must
	// not still claim to lead: no split brain.
	out, err := old.host.Output(ctx, c.bin, "status", "--json", "--timeout", "2s", "--coordinator", old.addr(grpcPort))
	if err == nil && strings.Contains(string(out), fmt.Sprintf(`"leaderId": %q`, old.id)) {
		t.Errorf("split brain: the isolated coordinator %s still names itself leader:\n%.400s", old.id, out)
	}
	return func() {
		if err := old.host.Heal(ctx); err != nil {
			t.Error(err)
		}
		rejoined(t, c, r, old)
	}
}

// rejoined wants the healed coordinator to follow the majority's leader.
func rejoined(t *testing.T, c *cluster, r *recorder, old *node) {
	t.Helper()
	s, _ := r.last()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := leaderSeenBy(old.addr(grpcPort))
		if err == nil && got == s.leader {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the healed coordinator %s names leader %q (%v), the majority %q", old.id, got, err, s.leader)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// agreedLeader polls the nodes until all name the same leader other than
// not, and returns it.
func agreedLeader(nodes []*node, not string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		seen := map[string]bool{}
		for _, n := range nodes {
			l, err := leaderSeenBy(n.addr(grpcPort))
			if err != nil {
				l = ""
			}
			seen[l] = true
		}
		if len(seen) == 1 && !seen[""] && !seen[not] {
			for l := range seen {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the majority names leaders %v after %v, want one other than %s", seen, timeout, not)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderSeenBy asks the coordinator at addr, and only it, which node it
// takes for the leader: its JobStatus when it leads, else the leader named
// in its NOT_LEADER answer.
func leaderSeenBy(addr string) (string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := pb.NewCoordinatorServiceClient(conn).JobStatus(ctx, &pb.JobStatusRequest{})
	if err == nil {
		return st.GetLeaderId(), nil
	}
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetMetadata()["leader_id"] != "" {
			return info.GetMetadata()["leader_id"], nil
		}
	}
	return "", err
}

// workerLoss drops 10% of worker 2's packets at random.
func workerLoss(t *testing.T, c *cluster, r *recorder) func() {
	w := c.workers[2]
	if err := w.host.Loss(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := w.host.Heal(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// workerSigterm asks worker 3 to stop: it must leave gracefully and exit 0.
func workerSigterm(t *testing.T, c *cluster, r *recorder) func() {
	w := c.workers[3]
	if err := c.stop(w, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("worker %s after SIGTERM: %v (want a graceful leave and exit status 0)", w.id, err)
	}
	return nil
}

// workerDelay switches on the delayed link into the slow worker.
func workerDelay(t *testing.T, c *cluster, r *recorder) func() {
	w := c.workers[0]
	if w.proxy == nil {
		t.Fatal("worker 0 has no delay proxy")
	}
	w.proxy.Signal(syscall.SIGUSR1)
	return func() { w.proxy.Signal(syscall.SIGUSR1) }
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
