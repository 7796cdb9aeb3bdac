package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whorl-ml/whorl/experiment"
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
}

func (p *fakePhases) Prepare(context.Context, []byte) (Prepared, error) {
	return Prepared{TrainIDs: ids(p.n), Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25},
		ManifestDigest: "manifest-test", Images: fakeImages{}}, nil
}

func (p *fakePhases) Baseline(context.Context, []byte) ([]byte, error) {
	return []byte(`{"accuracy":0.4}`), nil
}

func (p *fakePhases) FineTune(_ context.Context, _ []byte, pretrained, baseline []byte) ([]byte, error) {
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
	c := experiment.DefaultConfig()
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch, c.CheckpointEvery = epochs, batch, every
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c.JSON()
}

// tnode is one coordinator of a test cluster.
type tnode struct {
	cfg    Config
	n      *Node
	cancel context.CancelFunc
	done   chan error
}

// tcluster is a cluster of real nodes on loopback TCP with data dirs in
// t.TempDir().
type tcluster struct {
	t     *testing.T
	nodes []*tnode
}

// newCluster listens for size nodes and starts them.
func newCluster(t *testing.T, size int, tweak func(*Config)) *tcluster {
	t.Helper()
	c := &tcluster{t: t}
	var peers []Peer
	var raftLns, grpcLns []net.Listener
	for i := range size {
		rl, gl := listenLoopback(t), listenLoopback(t)
		raftLns, grpcLns = append(raftLns, rl), append(grpcLns, gl)
		peers = append(peers, Peer{ID: fmt.Sprintf("c%d", i), RaftAddr: rl.Addr().String()})
	}
	dir := t.TempDir()
	for i := range size {
		cfg := DefaultConfig()
		cfg.ID, cfg.DataDir = peers[i].ID, filepath.Join(dir, peers[i].ID)
		cfg.RaftAddr, cfg.GRPCAddr = raftLns[i].Addr().String(), grpcLns[i].Addr().String()
		if size > 1 {
			cfg.Peers = peers
		}
		cfg.RaftHeartbeatTimeout, cfg.RaftElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
		cfg.HeartbeatInterval, cfg.Lease = 100*time.Millisecond, 600*time.Millisecond
		cfg.AssignmentWait = 2 * time.Second
		cfg.Phases = &fakePhases{n: 40}
		cfg.Logger = testLogger().With("test", t.Name())
		if tweak != nil {
			tweak(&cfg)
		}
		c.nodes = append(c.nodes, &tnode{cfg: cfg})
		c.start(i, raftLns[i], grpcLns[i])
	}
	t.Cleanup(c.stopAll)
	return c
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// start runs node i (on the given listeners, or re-listening on its
// addresses after a stop).
func (c *tcluster) start(i int, raftLn, grpcLn net.Listener) {
	c.t.Helper()
	tn := c.nodes[i]
	cfg := tn.cfg
	var err error
	for attempt := 0; raftLn == nil && attempt < 50; attempt++ { // the port may linger briefly
		if raftLn, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if raftLn == nil {
		c.t.Fatalf("re-listen on %s: %v", cfg.RaftAddr, err)
	}
	if grpcLn == nil {
		if grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			c.t.Fatal(err)
		}
	}
	cfg.RaftListener, cfg.GRPCListener = raftLn, grpcLn
	n, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn.n, tn.cancel, tn.done = n, cancel, make(chan error, 1)
	go func() { tn.done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-tn.done:
		c.t.Fatalf("node %s stopped at start: %v", cfg.ID, err)
	}
}

// stop shuts node i down and waits for it.
func (c *tcluster) stop(i int) {
	tn := c.nodes[i]
	if tn.cancel == nil {
		return
	}
	tn.cancel()
	if err := <-tn.done; err != nil {
		c.t.Errorf("node %s: Run: %v", tn.cfg.ID, err)
	}
	tn.cancel = nil
}

func (c *tcluster) stopAll() {
	for i := range c.nodes {
		c.stop(i)
	}
}

// addrs returns the gRPC addresses of the running nodes.
func (c *tcluster) addrs() []string {
	var out []string
	for _, tn := range c.nodes {
		if tn.cancel != nil {
			out = append(out, tn.n.Addr())
		}
	}
	return out
}

// waitLeader waits until exactly one running node leads and has announced
// its address, and returns its index.
func (c *tcluster) waitLeader(timeout time.Duration) int {
	c.t.Helper()
	var leader int
	eventually(c.t, timeout, "a leader", func() bool {
		leader = -1
		for i, tn := range c.nodes {
			if tn.cancel != nil && tn.n.IsLeader() {
				if _, addr := tn.n.leader(); addr != tn.n.Addr() || leader >= 0 {
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
func heartbeater(t *testing.T, cl *Client, id string, every time.Duration) (stop func()) {
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
