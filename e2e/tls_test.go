package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
	"github.com/whorl-ml/whorl/worker"
)

// TestMutualTLSAndMetrics runs a coordinator and two workers with mutual
// TLS on every connection (coordinator API, raft, ring) through pretraining,
// checks that a peer without a certificate is refused by a worker's ring
// server, and scrapes a worker's Prometheus metrics.
func TestMutualTLSAndMetrics(t *testing.T) {
	dir := tinyDataDir(t, 3, 12)
	certs := t.TempDir()
	ca := tlstest.NewCA(t, "whorl test CA")
	lc, client := tlsCoordinator(t, ca.Files(t, certs, identity.Coordinator, "c0"), ca.Files(t, certs, identity.Client, "e2e"))
	metricsAddr := freeAddrs(t, 1)[0]
	ringAddrs := freeAddrs(t, 2)
	for i, id := range []string{"w0", "w1"} {
		cfg := worker.DefaultConfig()
		cfg.ID, cfg.Coordinators, cfg.Listen, cfg.DataDir, cfg.Threads = id, lc.Addrs(), ringAddrs[i], dir, 1
		cfg.AssignmentWait, cfg.Logger = 2*time.Second, logger(id)
		cfg.TLS = ca.Files(t, certs, identity.Worker, id)
		if i == 0 {
			cfg.MetricsAddr = metricsAddr
		}
		runWorker(t, cfg)
	}
	submit(t, client, tinyJob(t, dir, 2))
	waitUntil(t, 2*time.Minute, "pretraining done", pastPretraining(t, client))
	for _, w := range status(t, client).GetWorkers() {
		if w.GetStepTime().AsDuration() <= 0 {
			t.Errorf("worker %s: no step time reported (straggler detection needs it)", w.GetWorkerId())
		}
	}
	refusesPlaintext(t, ringAddrs[1])
	body := scrape(t, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{"whorl_worker_steps_total", "whorl_worker_allreduce_wait_seconds_bucket",
		"whorl_worker_ring_generation", "whorl_worker_images_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, `whorl_worker_steps_total{worker="w0"} 0`) {
		t.Error("metrics count no training step")
	}
}

// tlsCoordinator starts one coordinator (c0) with mutual TLS and a client
// of it holding the client's files.
func tlsCoordinator(t *testing.T, files, clientFiles tlsfiles.Files) (*coordinator.LocalCluster, *client.Client) {
	t.Helper()
	base := coordinator.DefaultConfig()
	base.Phases, base.Logger, base.AssignmentWait = &experiment.Runner{}, logger("coordinator"), 2*time.Second
	base.TLS = files
	lc, err := coordinator.StartLocal(t.TempDir(), 1, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	tc, err := tlsfiles.Load(clientFiles)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := dialClient(lc.Addrs(), tc.Client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return lc, cl
}

// runWorker runs a worker until the test ends.
func runWorker(t *testing.T, cfg worker.Config) {
	t.Helper()
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker %s: %v", cfg.ID, err)
		}
	})
}

// refusesPlaintext checks that a ring server with TLS does not speak to a
// plaintext client: the TLS server answers a plaintext HTTP/2 preface with
// a TLS alert or closes the connection.
func refusesPlaintext(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial ring server %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		return
	}
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(conn, buf, 1)
	if n > 0 && buf[0] != 0x15 { // 0x15: TLS alert record
		t.Errorf("ring server %s answered a plaintext client with %q", addr, buf[:n])
	}
}

// scrape returns the body of a GET.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
