package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// whorlBinary builds ./cmd/whorl once per test run (without the race
// detector: the processes are the system under test, not this test).
func whorlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "whorl-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "whorl")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/whorl-ml/whorl/cmd/whorl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/whorl: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a whorl subprocess.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *bytes.Buffer
	done    chan struct{}
	waitErr error // cmd.Wait's, once done is closed
}

// procs starts and kills whorl subprocesses; Cleanup kills what is left.
type procs struct {
	t    *testing.T
	bin  string
	dir  string
	mu   sync.Mutex
	all  map[string]*proc
	args map[string][]string // each name's last arguments, for restart
}

func newProcs(t *testing.T) *procs {
	p := &procs{t: t, bin: whorlBinary(t), dir: t.TempDir(), all: map[string]*proc{}, args: map[string][]string{}}
	t.Cleanup(p.killAll)
	return p
}

// start runs `whorl args...` as name.
func (p *procs) start(name string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(p.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", name, err)
	}
	pr := &proc{name: name, cmd: cmd, out: &out, done: make(chan struct{})}
	go func() { pr.waitErr = cmd.Wait(); close(pr.done) }()
	p.mu.Lock()
	p.all[name] = pr
	p.args[name] = args
	p.mu.Unlock()
}

// restart starts name again with its last arguments (after signal).
func (p *procs) restart(name string) {
	p.t.Helper()
	p.mu.Lock()
	args := p.args[name]
	p.mu.Unlock()
	p.start(name, args...)
}

// signal sends sig to name and waits (bounded) for it to exit.
func (p *procs) signal(name string, sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	pr := p.all[name]
	delete(p.all, name)
	p.mu.Unlock()
	if pr == nil {
		p.t.Fatalf("no process %s", name)
	}
	_ = pr.cmd.Process.Signal(sig)
	select {
	case <-pr.done:
	case <-time.After(15 * time.Second):
		_ = pr.cmd.Process.Kill()
		<-pr.done
		p.t.Errorf("%s did not exit within 15s of %v", name, sig)
	}
	if os.Getenv("WHORL_TEST_LOG") != "" || p.t.Failed() {
		p.t.Logf("--- output of %s (%v) ---\n%s", name, sig, tail(pr.out.String(), 40))
	}
}

// exited waits (bounded) for name to exit by itself and returns its
// output and exit error; it fails the test if name is still running.
func (p *procs) exited(name string, within time.Duration) (string, error) {
	p.t.Helper()
	p.mu.Lock()
	pr := p.all[name]
	p.mu.Unlock()
	if pr == nil {
		p.t.Fatalf("no process %s", name)
	}
	select {
	case <-pr.done:
	case <-time.After(within):
		p.t.Fatalf("%s still runs %v later; output:\n%s", name, within, tail(pr.out.String(), 20))
	}
	p.mu.Lock()
	delete(p.all, name)
	p.mu.Unlock()
	return pr.out.String(), pr.waitErr
}

func (p *procs) killAll() {
	p.mu.Lock()
	var names []string
	for n := range p.all {
		names = append(names, n)
	}
	p.mu.Unlock()
	for _, n := range names {
		p.signal(n, syscall.SIGTERM)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freeAddrs returns n loopback addresses with free ports.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// coordinatorProcs starts three coordinator processes and returns their
// gRPC addresses and a client.
func coordinatorProcs(t *testing.T, p *procs) ([]string, *client.Client) {
	t.Helper()
	raft, grpcs := freeAddrs(t, 3), freeAddrs(t, 3)
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("c%d=%s", i, raft[i]))
	}
	for i := range 3 {
		id := fmt.Sprintf("c%d", i)
		// experiment.Runner writes the baseline checkpoint into --out without
		// creating it when another leader prepared the job.
		if err := os.MkdirAll(filepath.Join(p.dir, "out-"+id), 0o755); err != nil {
			t.Fatal(err)
		}
		p.start(id, "coordinator", "--id", id, "--raft-addr", raft[i], "--grpc-addr", grpcs[i],
			"--data-dir", filepath.Join(p.dir, id), "--peers", strings.Join(peers, ","),
			"--out", filepath.Join(p.dir, "out-"+id))
	}
	cl, err := dialClient(grpcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return grpcs, cl
}

// startWorkerProc starts a worker process.
func startWorkerProc(p *procs, id string, coords []string, dataDir string) {
	p.start(id, "worker", "--id", id, "--coordinator", strings.Join(coords, ","), "--listen", "127.0.0.1:0",
		"--data", dataDir, "--threads", "1", "--assignment-wait", "2s")
}

// leaderName returns the process name of the raft leader.
func leaderName(t *testing.T, c *client.Client) string {
	t.Helper()
	s := status(t, c)
	if s.GetLeaderId() == "" {
		t.Fatal("no leader known")
	}
	return s.GetLeaderId()
}

// TestProcessesSurviveKills runs 3 coordinator and 3 worker processes of the
// real binary: kill -9 of a worker mid-run (the survivors must train again
// within 5 s: default heartbeat 1 s and lease 3 s), the worker restarted
// (it rejoins), SIGTERM of another worker (it leaves at once), kill -9 of
// the raft leader; the job completes, and `whorl fetch` downloads its
// results from the coordinators (checkFetch).
func TestProcessesSurviveKills(t *testing.T) {
	dir := tinyDataDir(t, 5, 16)
	p := newProcs(t)
	coords, client := coordinatorProcs(t, p)
	for _, id := range []string{"w0", "w1", "w2"} {
		startWorkerProc(p, id, coords, dir)
	}
	c := tinyJob(t, dir, 6)
	c.Data.ImageSize = 32
	submit(t, client, c)
	waitUntil(t, 2*time.Minute, "three workers training", func() bool {
		s := status(t, client)
		return s.GetPhase() == pb.Phase_PHASE_PRETRAINING && stepsDone(s) >= 4 && len(s.GetWorkers()) == 3
	})

	recovery := killWorker(t, p, client, "w1")
	t.Logf("kill -9 of a worker: training resumed %v after the kill", recovery)
	if recovery > 5*time.Second {
		t.Errorf("recovery after a worker death took %v, want under 5s", recovery)
	}

	startWorkerProc(p, "w1", coords, dir)
	waitUntil(t, time.Minute, "restarted worker rejoins a ring", func() bool {
		for _, w := range status(t, client).GetWorkers() {
			if w.GetWorkerId() == "w1" && w.GetRank() >= 0 {
				return true
			}
		}
		return false
	})

	checkDuplicateID(t, p, client, coords, dir)

	before := status(t, client)
	p.signal("w2", syscall.SIGTERM)
	left := time.Now()
	waitUntil(t, time.Minute, "training after a graceful leave", func() bool {
		s := status(t, client)
		return s.GetGeneration() > before.GetGeneration() && stepsDone(s) > stepsDone(before)+1 || s.GetPhase() != pb.Phase_PHASE_PRETRAINING
	})
	t.Logf("SIGTERM of a worker: training resumed %v after the signal", time.Since(left))

	before = status(t, client)
	leader := leaderName(t, client)
	p.signal(leader, syscall.SIGKILL)
	t.Logf("kill -9 of leader %s at %s", leader, describe(before))
	waitUntil(t, 5*time.Minute, "job done", phaseIs(t, client, pb.Phase_PHASE_DONE))
	t.Logf("done: %s", describe(status(t, client)))
	checkFetch(t, p, coords, filepath.Join(p.dir, "out-"+leaderName(t, client)))
}

// checkFetch runs `whorl fetch` against the coordinators and wants the
// fine-tuned network byte-identical to the one in the --out of the leader
// that fine-tuned (the current one: the job's only leader change came
// during pretraining), and every fetched file that --out holds too.
func checkFetch(t *testing.T, p *procs, coords []string, leaderOut string) {
	t.Helper()
	dst := t.TempDir()
	out, err := exec.Command(p.bin, "fetch", "--coordinator", strings.Join(coords, ","), "--out", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("whorl fetch: %v\n%s", err, out)
	}
	t.Logf("whorl fetch:\n%s", out)
	got, err := os.ReadFile(filepath.Join(dst, experiment.FileFinetuned))
	if err != nil {
		t.Fatal(err)
	}
	if want, err := os.ReadFile(filepath.Join(leaderOut, experiment.FileFinetuned)); err != nil || !bytes.Equal(got, want) {
		t.Errorf("fetched %s (%d bytes) differs from the leader's --out copy (%d bytes, %v)", experiment.FileFinetuned, len(got), len(want), err)
	}
	entries, _ := os.ReadDir(dst)
	for _, e := range entries {
		fetched, _ := os.ReadFile(filepath.Join(dst, e.Name()))
		if want, err := os.ReadFile(filepath.Join(leaderOut, e.Name())); err == nil && !bytes.Equal(fetched, want) {
			t.Errorf("fetched %s differs from the leader's --out copy", e.Name())
		}
	}
}

// checkDuplicateID starts a second process with worker id w0 while w0
// trains: the newer one fences the older, which must exit at once (within
// two heartbeats) with an error naming the id and the newer one's ring
// address, while the newer one trains on.
func checkDuplicateID(t *testing.T, p *procs, cl *client.Client, coords []string, dir string) {
	t.Helper()
	p.start("w0-again", "worker", "--id", "w0", "--coordinator", strings.Join(coords, ","), "--listen", "127.0.0.1:0",
		"--data", dir, "--threads", "1", "--assignment-wait", "2s")
	started := time.Now()
	out, err := p.exited("w0", 10*time.Second)
	t.Logf("the first w0 exited %v after a second process registered w0: %v", time.Since(started).Round(time.Millisecond), err)
	if err == nil {
		t.Errorf("the replaced w0 exited with status 0; want an error")
	}
	if !strings.Contains(out, `worker "w0"`) || !strings.Contains(out, "another process registered this id since, from ring address 127.0.0.1:") {
		t.Errorf("the replaced w0's output does not name the id and the other process's address:\n%s", tail(out, 10))
	}
	before := status(t, cl)
	waitUntil(t, time.Minute, "training with the second w0", func() bool {
		s := status(t, cl)
		return stepsDone(s) > stepsDone(before)+1 || s.GetPhase() != pb.Phase_PHASE_PRETRAINING
	})
	p.mu.Lock()
	p.all["w0"] = p.all["w0-again"] // the name later steps use
	delete(p.all, "w0-again")
	p.mu.Unlock()
}

// killWorker kills -9 worker id and returns how long until the job
// completed a step in a generation without it.
func killWorker(t *testing.T, p *procs, cl *client.Client, id string) time.Duration {
	t.Helper()
	before := status(t, cl)
	p.signal(id, syscall.SIGKILL)
	killed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		s := status(t, cl)
		if s.GetGeneration() > before.GetGeneration() && stepsDone(s) > stepsDone(before)+1 && len(s.GetWorkers()) == 2 {
			t.Logf("worker %s killed at %s; now %s", id, describe(before), describe(s))
			return time.Since(killed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("training did not resume within a minute of killing %s", id)
	return 0
}

// TestRestartedFollowerNeverAnswersStale kills -9 a follower coordinator
// process three times while two workers train (the raft log grows with
// every step), restarts it, and asks it alone for the job status in a loop
// from the moment it starts, with a new client each time as `whorl status`
// is: at least 50 tries in all, each either the job with progress at or
// past the last answer's, or an error (connection refused, no leader known
// yet); never no job, an empty state or progress going back (issue 35: a
// restarted follower answered "no job submitted" 6 times in 30).
func TestRestartedFollowerNeverAnswersStale(t *testing.T) {
	dir := tinyDataDir(t, 5, 40)
	p := newProcs(t)
	coords, cl := coordinatorProcs(t, p)
	for _, w := range []string{"w0", "w1"} {
		startWorkerProc(p, w, coords, dir)
	}
	id := submit(t, cl, tinyJob(t, dir, 40))
	waitUntil(t, time.Minute, "training", func() bool { return stepsDone(status(t, cl)) >= 10 })
	var high [3]uint64 // phase, epoch, step of the furthest answer so far
	answers, refusals := 0, 0
	for restart := range 3 {
		leader := leaderName(t, cl)
		n := (int(leader[1]-'0') + 1 + restart%2) % 3
		follower, addr := fmt.Sprintf("c%d", n), coords[n]
		p.signal(follower, syscall.SIGKILL)
		p.restart(follower)
		for tries := 0; tries < 25 || (answers < 17*(restart+1) && tries < 400); tries++ {
			st, err := askAlone(t, addr)
			if err != nil {
				refusals++
				continue
			}
			answers++
			got := [3]uint64{uint64(st.GetPhase()), uint64(st.GetEpoch()), uint64(st.GetNextStep())}
			if st.GetPhase() != pb.Phase_PHASE_PRETRAINING {
				got[1], got[2] = 0, 0
			}
			if st.GetJobId() != id || st.GetPhase() == pb.Phase_PHASE_FAILED || less(got, high) {
				t.Errorf("restart %d of %s, try %d: job %q phase %v epoch %d step %d; the job is %s and was at %v",
					restart+1, follower, tries, st.GetJobId(), st.GetPhase(), st.GetEpoch(), st.GetNextStep(), id, high)
			} else {
				high = got
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("%d answers, none behind an earlier one, and %d errors from a follower restarted 3 times; last %v", answers, refusals, high)
	if answers+refusals < 50 || answers == 0 {
		t.Errorf("%d answers and %d errors: want at least 50 tries and some answers", answers, refusals)
	}
	// Then every coordinator is killed and one comes back alone: it knows no
	// leader and holds only what it applied before, so it must not answer.
	for _, c := range []string{"c0", "c1", "c2"} {
		p.signal(c, syscall.SIGKILL)
	}
	p.restart("c0")
	alone := 0
	for try := range 20 {
		if st, err := askAlone(t, coords[0]); err == nil {
			alone++
			t.Errorf("c0 restarted alone, try %d: answered job %q phase %v epoch %d step %d (the job was at %v), want an error",
				try, st.GetJobId(), st.GetPhase(), st.GetEpoch(), st.GetNextStep(), high)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("c0 restarted alone: %d answers in 20 tries", alone)
}

// askAlone asks the coordinator at addr for the job status with a new
// client, as `whorl status` does: it connects the moment the port opens.
func askAlone(t *testing.T, addr string) (*pb.JobStatusResponse, error) {
	t.Helper()
	cl, err := dialClient([]string{addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	return cl.JobStatus(ctx)
}

// less orders (phase, epoch, step) positions.
func less(a, b [3]uint64) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
