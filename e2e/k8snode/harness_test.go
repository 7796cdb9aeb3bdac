package k8snode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// root is the repository root (this package is e2e/k8snode).
var root, _ = filepath.Abs(filepath.Join("..", ".."))

// ns is the namespace of the manifests.
const ns = "whorl"

// cluster drives one node through kubectl (a subprocess, as
// k8s/verify/dry-run.sh does: the module needs no client-go for it).
type cluster struct {
	t          *testing.T
	kubectl    string
	kubeconfig string
}

// requireNode returns the node WHORL_K8S_NODE names, starting it when it is
// "start"; it skips when the variable is unset.
func requireNode(t *testing.T) *cluster {
	t.Helper()
	v := os.Getenv("WHORL_K8S_NODE")
	if v == "" {
		t.Skip("k8snode suite: WHORL_K8S_NODE is unset: set it to the kubeconfig of a running node " +
			"(k8s/node/up.sh prints it), to start (start and stop one here; needs root, Docker, " +
			"containerd, runc, etcd-server, containernetworking-plugins), or run make k8s-node-test")
	}
	c := &cluster{t: t}
	switch v {
	case "start":
		c.kubeconfig = startNode(t)
	case "require":
		dir := os.Getenv("WHORL_NODE_DIR")
		if dir == "" {
			dir = "/tmp/whorl-node"
		}
		c.kubeconfig = filepath.Join(dir, "kubeconfig")
		if _, err := os.Stat(c.kubeconfig); err != nil {
			t.Fatalf("k8snode suite: WHORL_K8S_NODE=require and no node is up (%v): run make k8s-node-up", err)
		}
	default:
		c.kubeconfig = v
		if _, err := os.Stat(v); err != nil {
			t.Fatalf("k8snode suite: WHORL_K8S_NODE=%s: %v", v, err)
		}
	}
	c.kubectl = kubectlPath(t)
	return c
}

// kubectlPath is $WHORL_KUBECTL, else the kubectl that
// k8s/verify/build-apiserver.sh built (it builds it when missing).
func kubectlPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WHORL_KUBECTL"); p != "" {
		return p
	}
	out, err := exec.Command(filepath.Join(root, "k8s", "verify", "build-apiserver.sh")).Output()
	if err != nil {
		t.Fatalf("k8s/verify/build-apiserver.sh: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return filepath.Join(lines[len(lines)-1], "kubectl")
}

// startNode builds the image, starts the node with k8s/node/up.sh and stops
// it with down.sh when the test ends.
func startNode(t *testing.T) string {
	t.Helper()
	start := time.Now()
	if out, err := exec.Command("make", "-C", root, "image").CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image: %v", time.Since(start).Round(time.Second))
	start = time.Now()
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "k8s", "node", "up.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Cleanup(func() {
		start := time.Now()
		if out, err := exec.Command(filepath.Join(root, "k8s", "node", "down.sh")).CombinedOutput(); err != nil {
			t.Errorf("k8s/node/down.sh: %v\n%s", err, out)
		}
		t.Logf("node down in %v", time.Since(start).Round(time.Second))
	})
	if err != nil {
		t.Fatalf("k8s/node/up.sh: %v\n%s", err, tail(stderr.String(), 40))
	}
	t.Logf("node up in %v", time.Since(start).Round(time.Second))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// run runs kubectl with args and returns its stdout; stderr goes into the error.
func (c *cluster) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return c.runCtx(ctx, args...)
}

func (c *cluster) runCtx(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// must is run failing the test on error.
func (c *cluster) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// mustWait runs a kubectl command that waits up to d (rollout status, wait).
func (c *cluster) mustWait(d time.Duration, args ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	if _, err := c.runCtx(ctx, append(args, "--timeout="+d.String())...); err != nil {
		c.dump()
		c.t.Fatal(err)
	}
}

// dump logs the pods, events and the coordinators' and workers' log tails.
func (c *cluster) dump() {
	c.t.Helper()
	out, _ := c.run("-n", ns, "get", "pods,pvc,jobs", "-o", "wide")
	c.t.Logf("--- kubectl get pods,pvc,jobs\n%s", out)
	out, _ = c.run("-n", ns, "get", "events", "--sort-by=.lastTimestamp")
	c.t.Logf("--- events (tail)\n%s", tail(out, 30))
	for _, sel := range []string{"coordinator", "worker", "submit"} {
		out, _ = c.run("-n", ns, "logs", "-l", "app.kubernetes.io/component="+sel, "--tail=8", "--prefix")
		c.t.Logf("--- %s logs (tail)\n%s", sel, out)
	}
}

// status is the part of `whorl status --json` the suite reads.
type status struct {
	JobID         string `json:"jobId"`
	FailureReason string `json:"failureReason"`
	Phase         string `json:"phase"`
	Epoch         int    `json:"epoch"`
	NextStep      int    `json:"nextStep"`
	TotalSteps    int    `json:"totalSteps"`
	Generation    string `json:"generation"`
	LeaderID      string `json:"leaderId"`
	Workers       []struct {
		WorkerID string `json:"workerId"`
	} `json:"workers"`
}

// progress is a monotonic measure of committed pretraining work.
func (s status) progress() int { return s.Epoch*10000 + s.NextStep }

// status asks the raft leader's view through `whorl status --json` run in
// each coordinator pod in turn (kubectl exec of the binary: the image has
// no shell) until one answers with a leader known.
func (c *cluster) status() (status, error) {
	var last error
	for i := range 3 {
		pod := fmt.Sprintf("whorl-coordinator-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := c.runCtx(ctx, "-n", ns, "exec", pod, "-c", "coordinator", "--",
			"/whorl", "status", "--json", "--coordinator", "whorl:7401", "--timeout", "5s")
		cancel()
		if err != nil {
			last = err
			continue
		}
		var s status
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			last = fmt.Errorf("%s: status JSON: %w", pod, err)
			continue
		}
		if s.LeaderID == "" {
			last = fmt.Errorf("%s knows no leader", pod)
			continue
		}
		return s, nil
	}
	return status{}, fmt.Errorf("no coordinator answered: %v", last)
}

// resolve looks name up at the node's CoreDNS (the kubelet's clusterDNS,
// on the node's InternalIP).
func (c *cluster) resolve(name string) ([]string, error) {
	ip := strings.TrimSpace(c.must("get", "nodes", "-o", `jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}`))
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(ip, "53"))
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.LookupHost(ctx, name)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
