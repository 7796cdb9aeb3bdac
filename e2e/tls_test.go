package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/worker"
)

// pki writes a CA and one leaf certificate for 127.0.0.1 (server and client
// use) signed by it into dir, and returns the file names.
func pki(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

// newCA returns a self-signed CA written to dir/ca.pem.
func newCA(t *testing.T, dir string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "whorl test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ca.pem")
	writePEM(t, file, "CERTIFICATE", der)
	return ca, key, file
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMutualTLSAndMetrics runs a coordinator and two workers with mutual
// TLS on every connection (coordinator API, raft, ring) through pretraining,
// checks that a peer without a certificate is refused by a worker's ring
// server, and scrapes a worker's Prometheus metrics.
func TestMutualTLSAndMetrics(t *testing.T) {
	dir := tinyDataDir(t, 3, 12)
	certs := t.TempDir()
	ca, caKey, caFile := newCA(t, certs)
	lc, client := tlsCoordinator(t, certs, ca, caKey, caFile)
	metricsAddr := freeAddrs(t, 1)[0]
	ringAddrs := freeAddrs(t, 2)
	for i, id := range []string{"w0", "w1"} {
		cert, key := pki(t, certs, id, ca, caKey)
		cfg := worker.DefaultConfig()
		cfg.ID, cfg.Coordinators, cfg.Listen, cfg.DataDir, cfg.Threads = id, lc.Addrs(), ringAddrs[i], dir, 1
		cfg.AssignmentWait, cfg.Logger = 2*time.Second, logger(id)
		cfg.TLS = worker.TLSConfig{CAFile: caFile, CertFile: cert, KeyFile: key}
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

// tlsCoordinator starts one coordinator with mutual TLS and a client of it.
func tlsCoordinator(t *testing.T, certs string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, caFile string) (*coordinator.LocalCluster, *coordinator.Client) {
	t.Helper()
	ccert, ckey := pki(t, certs, "coordinator", ca, caKey)
	base := coordinator.DefaultConfig()
	base.Phases, base.Logger, base.AssignmentWait = &experiment.Runner{}, logger("coordinator"), 2*time.Second
	base.TLS = coordinator.TLSFiles{Cert: ccert, Key: ckey, CA: caFile}
	lc, err := coordinator.StartLocal(t.TempDir(), 1, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	_, clientTLS, err := coordinator.LoadTLS(base.TLS)
	if err != nil {
		t.Fatal(err)
	}
	client, err := coordinator.NewClient(coordinator.ClientConfig{Addrs: lc.Addrs(), TLS: clientTLS, Logger: logger("client")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return lc, client
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
