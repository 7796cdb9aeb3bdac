package netns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Ports of the hosts (the binary's defaults for the coordinator).
const (
	raftPort   = "7400"
	grpcPort   = "7401"
	workerPort = "7410"
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
}

// addr is the node's address on port.
func (n *node) addr(port string) string { return net.JoinHostPort(n.host.Addr.String(), port) }

// cluster is a whorl deployment over hosts of one network.
type cluster struct {
	t       *testing.T
	dir     string
	bin     string
	coords  []*node
	workers []*node
	client  *coordinator.Client
}

// newCluster starts nc coordinators and nw workers, each on its own host
// named <tag>c<i> / <tag>w<i>, and waits for a raft leader. Everything is
// removed when the test ends; the logs are printed when it failed.
func newCluster(t *testing.T, tag string, nc, nw int) *cluster {
	t.Helper()
	n := Require(t)
	bin, err := whorlBin()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: t.TempDir(), bin: bin}
	ctx := context.Background()
	add := func(name string) *node {
		h, err := n.AddHost(ctx, tag+name)
		if err != nil {
			t.Fatal(err)
		}
		nd := &node{id: name, host: h, log: filepath.Join(c.dir, name+".log")}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("--- %s (%s) log tail:\n%s", name, h.Addr, tailFile(nd.log, 25))
			}
			if err := h.Remove(context.Background()); err != nil {
				t.Errorf("remove host %s: %v", h.Name, err)
			}
		})
		return nd
	}
	for i := range nc {
		c.coords = append(c.coords, add(fmt.Sprintf("c%d", i)))
	}
	for i := range nw {
		c.workers = append(c.workers, add(fmt.Sprintf("w%d", i)))
	}
	var peers, grpcs []string
	for _, cn := range c.coords {
		peers = append(peers, cn.id+"="+cn.addr(raftPort))
		grpcs = append(grpcs, cn.addr(grpcPort))
	}
	for _, cn := range c.coords {
		cn.args = []string{"coordinator", "--id", cn.id, "--raft-addr", cn.addr(raftPort), "--grpc-addr", cn.addr(grpcPort),
			"--data-dir", filepath.Join(c.dir, cn.id), "--out", filepath.Join(c.dir, cn.id, "report"),
			"--peers", strings.Join(peers, ","), "--worker-wait", "2m"}
		c.start(cn)
	}
	for _, wn := range c.workers {
		wn.args = []string{"worker", "--id", wn.id, "--coordinator", strings.Join(grpcs, ","), "--listen", wn.addr(workerPort)}
		c.start(wn)
	}
	c.client, err = coordinator.NewClient(coordinator.ClientConfig{Addrs: grpcs, RetryTimeout: 20 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.client.Close() })
	if _, err := c.status(30 * time.Second); err != nil {
		t.Fatalf("no raft leader within 30 s: %v", err)
	}
	return c
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

// status asks the leader for the job status.
func (c *cluster) status(timeout time.Duration) (*pb.JobStatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.client.JobStatus(ctx)
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
