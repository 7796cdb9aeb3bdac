package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
)

// TestCoordinatorRefusesJobsTooLarge runs `whorl coordinator` with a
// 1 GiB job memory limit and submits a job like the (ResNet-50, at the embedded photos' 48 px,
// supervised batches of 4096): it is refused at submit naming the estimate,
// its largest part and the limit, while the quick preset is admitted.
func TestCoordinatorRefusesJobsTooLarge(t *testing.T) {
	addr := freeAddr(t)
	o := coordinatorOptions{cfg: coordinator.DefaultConfig(), out: t.TempDir(), logFormat: "text", snapshotThreshold: 1024, jobMemory: "1GiB"}
	o.cfg.ID, o.cfg.DataDir, o.cfg.RaftAddr, o.cfg.GRPCAddr = "c0", t.TempDir(), freeAddr(t), addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runCoordinator(ctx, io.Discard, o) }()
	defer func() {
		cancel()
		<-done
	}()
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, []byte(`{"model": {"name": "resnet50"}, "data": {"image_size": 48},
		"supervised": {"batch": 4096}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) { // ready: a leader
		if _, err, _ := runWhorlFor(t, time.Second, "health", "--addr", addr, "--timeout", "500ms"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the coordinator is not ready: %v", err)
		}
	}
	out, err, _ := runWhorlFor(t, 30*time.Second, "submit", "--coordinator", addr, "--job", big)
	if err == nil {
		t.Fatalf("the ResNet-50 job at batch 4096 was admitted:\n%s", out)
	}
	for _, want := range []string{"job too large", "training resnet50 at batch 4096", "limit of 1.0 GiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q: %v", want, err)
		}
	}
	t.Logf("refused: %v", err)
	if out, err, _ := runWhorlFor(t, 30*time.Second, "submit", "--coordinator", addr, "--preset", "quick"); err != nil {
		t.Fatalf("the quick preset was refused: %v\n%s", err, out)
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
