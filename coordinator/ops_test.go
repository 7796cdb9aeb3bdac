package coordinator

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

func TestParsePeersAndDNS(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"c0=127.0.0.1:1,c1=127.0.0.1:2", 2, true},
		{" c0=h:1 , ", 1, true},
		{"c0=h:1,c0=h:2", 0, false},
		{"c0", 0, false},
		{"c0=nohostport", 0, false},
	} {
		got, err := ParsePeers(tc.in)
		if (err == nil) != tc.ok || len(got) != tc.want {
			t.Errorf("ParsePeers(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("ParsePeers(%q): %v does not wrap ErrConfig", tc.in, err)
		}
	}
	peers, err := dnsPeers("coordinator-2", "coordinator.ns.svc", "0.0.0.0:7400", 3)
	if err != nil || len(peers) != 3 || peers[0].ID != "coordinator-0" || peers[2].RaftAddr != "coordinator-2.coordinator.ns.svc:7400" {
		t.Fatalf("dnsPeers: %v %v", peers, err)
	}
	if _, err := dnsPeers("nodash", "svc", "h:1", 3); !errors.Is(err, ErrConfig) {
		t.Errorf("dnsPeers without an ordinal: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.ID, ok.DataDir = "c0", "/tmp/x"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	insecure := ok
	insecure.RaftAddr, insecure.GRPCAddr, insecure.Insecure = "0.0.0.0:7400", "10.1.2.3:7401", true
	if err := insecure.Validate(); err != nil {
		t.Fatalf("plaintext beyond loopback with Insecure: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"ID", func(c *Config) { c.ID = "" }},
		{"DataDir", func(c *Config) { c.DataDir = "" }},
		{"Lease", func(c *Config) { c.Lease = c.HeartbeatInterval }},
		{"StragglerFactor", func(c *Config) { c.StragglerFactor = 1 }},
		{"Peers", func(c *Config) { c.Peers, c.PeersDNS = []Peer{{"a", "h:1"}}, "svc" }},
		{"RaftElectionTimeout", func(c *Config) { c.RaftHeartbeatTimeout, c.RaftElectionTimeout = time.Second, 500*time.Millisecond }},
		{"RaftHeartbeatTimeout", func(c *Config) { c.RaftHeartbeatTimeout = 2 * time.Second }}, // above raft's default election timeout
		{"RaftHeartbeatTimeout", func(c *Config) { c.RaftHeartbeatTimeout = time.Millisecond }},
		{"SnapshotInterval", func(c *Config) { c.SnapshotInterval = time.Microsecond }},
		{"KeepJobs", func(c *Config) { c.KeepJobs = -1 }},
		{"KeepJobs", func(c *Config) { c.KeepJobs = MaxKeepJobs + 1 }},
		{"GRPCAddr = 0.0.0.0:7401 is not a loopback address", func(c *Config) { c.GRPCAddr = "0.0.0.0:7401" }},
		{"RaftAddr = 10.1.2.3:7400 is not a loopback address", func(c *Config) { c.RaftAddr = "10.1.2.3:7400" }},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
	all := ok
	all.ID, all.StragglerFactor, all.RaftElectionTimeout = "", 1, time.Millisecond
	err := all.Validate()
	for _, field := range []string{"ID", "StragglerFactor", "RaftElectionTimeout"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("a config with three problems: %v does not name %s", err, field)
		}
	}
}

func TestStragglers(t *testing.T) {
	lt := newLeaseTable()
	for range 8 {
		lt.record("fast0", 0, 110*time.Millisecond, 10*time.Millisecond)
		lt.record("fast1", 1, 105*time.Millisecond, 5*time.Millisecond)
		lt.record("slow", 2, 300*time.Millisecond, 0)
	}
	lt.record("new", 3, time.Second, 0) // too few steps to judge
	got := lt.timingsOf(1.5)
	if !got["slow"].Straggler || got["fast0"].Straggler || got["fast1"].Straggler || got["new"].Straggler {
		t.Fatalf("stragglers: %+v", got)
	}
	if got["fast0"].Compute != 100*time.Millisecond || got["fast0"].Wait != 10*time.Millisecond {
		t.Errorf("fast0 timings %+v, want compute 100ms wait 10ms", got["fast0"])
	}
}

// TestHealthAndMetrics checks grpc.health.v1 reports SERVING once a leader
// exists and /metrics exports raft and generation metrics.
func TestHealthAndMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	c := newCluster(t, 1, func(cfg *Config) { cfg.MetricsAddr = metricsAddr })
	c.waitLeader(10 * time.Second)
	conn, err := grpc.NewClient(c.addrs()[0], client.DialOptions(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eventually(t, 5*time.Second, "SERVING", func() bool {
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: pb.CoordinatorService_ServiceDesc.ServiceName})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	live, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: LivenessService})
	if err != nil || live.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("liveness: %v %v", live, err)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"whorl_coordinator_raft_commit_index", `whorl_coordinator_raft_state{state="leader"} 1`,
		"whorl_coordinator_generation_changes_total", "whorl_coordinator_samples_per_second"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// TestMutualTLS runs a 3-node cluster with mTLS on raft and gRPC: a worker
// with its certificate works (through leader redirects), a plaintext client
// is refused.
func TestMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "whorl test CA")
	c := newCluster(t, 3, nil, NodeTLS(func(id string) TLSFiles { return ca.Files(t, t.TempDir(), identity.Coordinator, id) }))
	c.waitLeader(15 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, _ := dialTest(c.addrs(), func(c *client.Config) { c.TLS = ca.Configs(t, identity.Worker, "w").Client })
	defer cl.Close()
	if _, err := cl.Register(ctx, "w", "w:1"); err != nil {
		t.Fatalf("register over mTLS: %v", err)
	}
	bad, _ := dialTest(c.addrs()[:1], func(c *client.Config) { c.RetryTimeout = time.Second })
	defer bad.Close()
	if _, err := bad.JobStatus(ctx); err == nil {
		t.Fatalf("plaintext client accepted by an mTLS coordinator")
	}
}
