package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger discards logs unless WHORL_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("WHORL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fakePhases is a deterministic Phases over n synthetic images: the
// experiment package owns the real one; these tests are about the
// coordinator's use of it.
type fakePhases struct {
	n         int
	mu        sync.Mutex
	finetuned []byte
	// blockBaseline makes the first Baseline call wait for its ctx (the
	// leader's) to end, as if the leader died mid-phase.
	blockBaseline bool
	baselines     int
	inBaseline    chan struct{}
	// baselineEnded, when set, is closed once the blocked Baseline returns.
	baselineEnded chan struct{}
}

func (p *fakePhases) Prepare(context.Context, []byte) (job.Prepared, error) {
	return job.Prepared{TrainIDs: ids(p.n), Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25},
		ManifestDigest: "manifest-test", Images: fakeImages{}}, nil
}

func (p *fakePhases) Baseline(ctx context.Context, _ []byte) ([]byte, error) {
	p.mu.Lock()
	p.baselines++
	first := p.baselines == 1
	p.mu.Unlock()
	if first && p.blockBaseline {
		close(p.inBaseline)
		<-ctx.Done()
		if p.baselineEnded != nil {
			close(p.baselineEnded)
		}
		return nil, ctx.Err()
	}
	return []byte(`{"accuracy":0.4}`), nil
}

func (p *fakePhases) FineTune(_ context.Context, _ []byte, pretrained, baseline []byte, _ []job.EpochStat) ([]byte, error) {
	p.mu.Lock()
	p.finetuned = append([]byte(nil), pretrained...)
	p.mu.Unlock()
	return json.Marshal(map[string]any{"pretrained_bytes": len(pretrained), "baseline": json.RawMessage(baseline)})
}

// fakeImages serves "image <id>" as the bytes of image id.
type fakeImages struct{}

func (fakeImages) ReadImage(_ context.Context, id int) (string, []byte, error) {
	return fmt.Sprintf("%d.jpg", id), []byte(fmt.Sprintf("image %d", id)), nil
}

// testConfig is a job config of the quick preset with small numbers.
func testConfig(t *testing.T, epochs, batch, every int) []byte {
	t.Helper()
	c := job.DefaultConfig()
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch, c.CheckpointEvery = epochs, batch, every
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c.JSON()
}

// tcluster is a LocalCluster (real nodes on loopback TCP, data dirs in
// t.TempDir()) with test helpers.
type tcluster struct {
	t  *testing.T
	lc *LocalCluster
}

// fastConfig is the tests' base config: fast raft timings, short leases.
func fastConfig(t *testing.T, tweak func(*Config)) Config {
	cfg := DefaultConfig()
	cfg.RaftHeartbeatTimeout, cfg.RaftElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
	cfg.HeartbeatInterval, cfg.Lease = 100*time.Millisecond, 600*time.Millisecond
	cfg.AssignmentWait = 2 * time.Second
	cfg.Phases = &fakePhases{n: 40}
	cfg.Logger = testLogger().With("test", t.Name())
	if tweak != nil {
		tweak(&cfg)
	}
	return cfg
}

// newCluster starts size nodes with fastConfig.
func newCluster(t *testing.T, size int, tweak func(*Config), opts ...LocalOption) *tcluster {
	t.Helper()
	lc, err := StartLocal(t.TempDir(), size, fastConfig(t, tweak), opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := &tcluster{t: t, lc: lc}
	t.Cleanup(func() {
		if err := lc.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// startNode runs a single-node group (New, then Run) with fastConfig on
// free loopback ports; prep may replace the Node's internals before Run.
// The node stops at cleanup.
func startNode(t *testing.T, prep func(*Node)) *Node {
	t.Helper()
	n := newNode(t)
	if prep != nil {
		prep(n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run node: %v", err)
		}
	})
	return n
}

// node returns member i (nil while stopped); dataDir its data dir.
func (c *tcluster) node(i int) *Node     { return c.lc.Node(i) }
func (c *tcluster) dataDir(i int) string { return c.lc.nodes[i].cfg.DataDir }
func (c *tcluster) size() int            { return c.lc.Size() }
func (c *tcluster) addrs() []string      { return c.lc.Addrs() }

func (c *tcluster) stop(i int) {
	c.t.Helper()
	if err := c.lc.Stop(i); err != nil {
		c.t.Errorf("stop node %d: %v", i, err)
	}
}

func (c *tcluster) restart(i int) {
	c.t.Helper()
	if err := c.lc.Restart(i); err != nil {
		c.t.Fatal(err)
	}
}

// waitLeader waits until exactly one running node leads and has announced
// its address, and returns its index.
func (c *tcluster) waitLeader(timeout time.Duration) int {
	c.t.Helper()
	var leader int
	eventually(c.t, timeout, "a leader", func() bool {
		leader = -1
		for i := range c.size() {
			if n := c.node(i); n != nil && n.IsLeader() {
				if _, addr := n.leader(); addr != n.Addr() || leader >= 0 {
					return false
				}
				leader = i
			}
		}
		return leader >= 0
	})
	return leader
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// heartbeater keeps a worker's lease alive until stopped.
func heartbeater(t *testing.T, cl *client.Client, id string, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				hctx, hcancel := context.WithTimeout(ctx, time.Second)
				_, _ = cl.Heartbeat(hctx, id, 0)
				hcancel()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// dialTest returns a coordinator client of addrs with the default
// configuration (edited by edit) logging to the test logger.
func dialTest(addrs []string, edit ...func(*client.Config)) (*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.Logger = addrs, testLogger()
	for _, e := range edit {
		e(&cfg)
	}
	return client.New(cfg)
}

// newNode returns a one-node coordinator "c0" (not running) on free
// loopback ports with the tests' fast timings.
func newNode(t *testing.T) *Node {
	t.Helper()
	cfg := fastConfig(t, nil)
	cfg.ID, cfg.DataDir = "c0", t.TempDir()
	cfg.RaftAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// twoStepsDone dials c, keeps worker w1 registered (heartbeats until the
// test ends), starts pretraining a job of epochs epochs (batch 8,
// checkpoint every 2 steps) and reports its first two steps; it returns
// the client and w1's assignment.
func twoStepsDone(t *testing.T, ctx context.Context, c *tcluster, epochs int) (*client.Client, *pb.GetAssignmentResponse) {
	t.Helper()
	cl, err := dialTest(c.addrs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	t.Cleanup(heartbeater(t, cl, "w1", 100*time.Millisecond))
	a := startPretraining(t, ctx, cl, "w1", testConfig(t, epochs, 8, 2))
	for step := range uint32(2) {
		if _, err := report(ctx, cl, "w1", a, 0, step); err != nil {
			t.Fatal(err)
		}
	}
	return cl, a
}
