package netns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Ports of the hosts (the binary's defaults for the coordinator).
const (
	raftPort   = "7400"
	grpcPort   = "7401"
	workerPort = "7410"
	// metricsPort serves each worker's Prometheus /metrics.
	metricsPort = "9100"
)

// whorlBin builds cmd/whorl once per test process (WHORL_BIN overrides).
var whorlBin = sync.OnceValues(func() (string, error) {
	if b := os.Getenv("WHORL_BIN"); b != "" {
		return b, nil
	}
	dir, err := os.MkdirTemp("", "whorl-netns")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "whorl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/whorl-ml/whorl/cmd/whorl").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/whorl: %w\n%s", err, out)
	}
	return bin, nil
})

// node is one whorl process on its own host.
type node struct {
	id   string
	host *Host
	proc *Proc
	args []string
	log  string
	// proxy, when set, delays the ring traffic into this worker (SIGUSR1
	// toggles it).
	proxy *Proc
}

// addr is the node's address on port.
func (n *node) addr(port string) string { return net.JoinHostPort(n.host.Addr.String(), port) }

// cluster is a whorl deployment over hosts of one network.
type cluster struct {
	t       testing.TB
	dir     string
	bin     string
	coords  []*node
	workers []*node
	// clients[i] starts at coordinator i; the driver's calls go through
	// call, which moves to the next one when an attempt fails.
	clients []*client.Client
	grpcs   []string
	mu      sync.Mutex
	cur     int
}

// newCluster starts nc coordinators and nw workers, each on its own host
// named <tag>c<i> / <tag>w<i>, and waits for a raft leader. Worker slow
// (-1: none) receives its ring traffic through a DelayProxy on its host
// that starts without delay. Everything is removed when the test ends; the
// logs are printed when it failed.
func newCluster(t testing.TB, tag string, nc, nw, slow int, delay time.Duration) *cluster {
	t.Helper()
	n := Require(t)
	bin, err := whorlBin()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: t.TempDir(), bin: bin}
	for i := range nc {
		c.coords = append(c.coords, c.addNode(n, tag, fmt.Sprintf("c%d", i)))
	}
	for i := range nw {
		c.workers = append(c.workers, c.addNode(n, tag, fmt.Sprintf("w%d", i)))
	}
	grpcs := c.startCoordinators()
	for i, wn := range c.workers {
		c.startWorker(wn, grpcs, i == slow, delay)
	}
	c.dialClients(grpcs)
	if _, err := c.status(30 * time.Second); err != nil {
		t.Fatalf("no raft leader within 30 s: %v", err)
	}
	return c
}

// addNode adds host tag+name for a node, removed when the test ends.
func (c *cluster) addNode(n *Network, tag, name string) *node {
	t := c.t
	t.Helper()
	h, err := n.AddHost(context.Background(), tag+name)
	if err != nil {
		t.Fatal(err)
	}
	nd := &node{id: name, host: h, log: filepath.Join(c.dir, name+".log")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s (%s) log tail:\n%s", name, h.Addr, tailFile(nd.log, logLines()))
		}
		keepLog(t, nd.log)
		if err := h.Remove(context.Background()); err != nil {
			t.Errorf("remove host %s: %v", h.Name, err)
		}
	})
	return nd
}

// startCoordinators starts the raft group with a static peer list and
// returns the coordinators' gRPC addresses.
func (c *cluster) startCoordinators() []string {
	var peers, grpcs []string
	for _, cn := range c.coords {
		peers = append(peers, cn.id+"="+cn.addr(raftPort))
		grpcs = append(grpcs, cn.addr(grpcPort))
	}
	for _, cn := range c.coords {
		cn.args = []string{"coordinator", "--id", cn.id, "--raft-addr", cn.addr(raftPort), "--grpc-addr", cn.addr(grpcPort),
			"--data-dir", filepath.Join(c.dir, cn.id), "--out", filepath.Join(c.dir, cn.id, "report"),
			"--peers", strings.Join(peers, ","), "--worker-wait", "2m", "--insecure"}
		c.start(cn)
	}
	return grpcs
}

// startWorker starts a worker; a slow one listens on loopback behind a
// delay proxy on its advertised address.
func (c *cluster) startWorker(wn *node, grpcs []string, slow bool, delay time.Duration) {
	wn.args = []string{"worker", "--id", wn.id, "--coordinator", strings.Join(grpcs, ","),
		"--metrics-addr", wn.addr(metricsPort), "--insecure"}
	if !slow {
		wn.args = append(wn.args, "--listen", wn.addr(workerPort))
		c.start(wn)
		return
	}
	inner := net.JoinHostPort("127.0.0.1", workerPort)
	wn.args = append(wn.args, "--listen", inner, "--advertise", wn.addr(workerPort))
	p, err := StartProxy(wn.host, filepath.Join(c.dir, wn.id+"-proxy.log"), wn.addr(workerPort), inner, delay, false)
	if err != nil {
		c.t.Fatal(err)
	}
	wn.proxy = p
	c.start(wn)
}

// dialClients makes one client per coordinator, each starting there.
func (c *cluster) dialClients(grpcs []string) {
	c.grpcs = grpcs
	for i := range grpcs {
		c.clients = append(c.clients, c.newClient(i))
	}
	c.t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, cl := range c.clients {
			cl.Close()
		}
	})
}

// newClient returns a client that starts at coordinator i.
func (c *cluster) newClient(i int) *client.Client {
	rotated := append(append([]string{}, c.grpcs[i:]...), c.grpcs[:i]...)
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.RetryTimeout, cfg.Logger = rotated, 10*time.Second, slog.New(slog.DiscardHandler)
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// start (re)starts a node's process with its arguments.
func (c *cluster) start(n *node) {
	c.t.Helper()
	p, err := n.host.Start(n.log, c.bin, n.args...)
	if err != nil {
		c.t.Fatal(err)
	}
	n.proc = p
}

// attempt bounds one driver call through one client: a coordinator that is
// cut off (packets dropped, not refused) must not hold the driver up.
const attempt = 2 * time.Second

// call runs f on the leader, moving to a client that starts at the next
// coordinator after each failed attempt, until f succeeds or ctx ends.
func (c *cluster) call(ctx context.Context, f func(context.Context, *client.Client) error) error {
	for {
		c.mu.Lock()
		cl := c.clients[c.cur]
		c.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := f(actx, cl)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		// A failed client may have followed a leader that is now cut off:
		// replace it, and try the next coordinator.
		c.mu.Lock()
		if c.clients[c.cur] == cl {
			cl.Close()
			c.clients[c.cur] = c.newClient(c.cur)
			c.cur = (c.cur + 1) % len(c.clients)
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// status asks the leader for the job status.
func (c *cluster) status(timeout time.Duration) (*pb.JobStatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var st *pb.JobStatusResponse
	err := c.call(ctx, func(ctx context.Context, cl *client.Client) (err error) {
		st, err = cl.JobStatus(ctx)
		return err
	})
	return st, err
}

// coordinator returns the coordinator node with raft id id.
func (c *cluster) coordinator(id string) *node {
	for _, n := range c.coords {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no coordinator %q", id)
	return nil
}

// stop sends sig to a node's process and waits for it to exit.
func (c *cluster) stop(n *node, sig syscall.Signal, wait time.Duration) error {
	n.proc.Signal(sig)
	return n.proc.Wait(wait)
}

// logLines is how many lines of each log a failed scenario prints
// (WHORL_E2E_LOG_LINES, default 25).
func logLines() int {
	n, err := strconv.Atoi(os.Getenv("WHORL_E2E_LOG_LINES"))
	if err != nil || n <= 0 {
		return 25
	}
	return n
}

// keepLog copies a node's log into $WHORL_E2E_KEEP_LOGS/<test name>/ when
// that is set, to read a scenario's timeline whether it passed or not.
func keepLog(t testing.TB, name string) {
	dir := os.Getenv("WHORL_E2E_KEEP_LOGS")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Logf("keep log %s: %v", name, err)
		return
	}
	dst := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err == nil {
		err = os.WriteFile(filepath.Join(dst, filepath.Base(name)), b, 0o644)
	}
	if err != nil {
		t.Logf("keep log %s: %v", name, err)
	}
}

// tailFile returns the last n lines of a file.
func tailFile(name string, n int) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
