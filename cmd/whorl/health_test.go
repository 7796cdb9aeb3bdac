package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
)

// TestHealthCommand checks `whorl health` against a real coordinator: the
// server (ready: a leader is known) and its liveness service are SERVING
// (exit 0), an unknown service
// and a closed port fail, within the timeout.
func TestHealthCommand(t *testing.T) {
	base := coordinator.DefaultConfig()
	base.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	lc, err := coordinator.StartLocal(t.TempDir(), 1, base)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if _, err := lc.Leader(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	addr := lc.Addrs()[0]
	for _, svc := range []string{"", coordinator.LivenessService} {
		// Readiness follows the leader within the node's 200 ms health tick.
		var text string
		var err error
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if text, err = runWhorl(t, "health", "--addr", addr, "--service", svc); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || !strings.Contains(text, "SERVING") {
			t.Errorf("health %q: %v %s", svc, err, text)
		}
	}
	host, port, _ := strings.Cut(addr, ":")
	t.Setenv("WHORL_TEST_POD_IP", host)
	if text, err := runWhorl(t, "health", "--addr", "${WHORL_TEST_POD_IP}:"+port, "--service", coordinator.LivenessService); err != nil ||
		!strings.Contains(text, addr) {
		t.Errorf("health with the address from the environment: %v %s", err, text)
	}
	if _, err := runWhorl(t, "health", "--addr", "${WHORL_TEST_UNSET}:"+port); err == nil || !strings.Contains(err.Error(), "WHORL_TEST_UNSET is not set") {
		t.Errorf("health with an unset variable in --addr: %v, want it named", err)
	}
	start := time.Now()
	for _, args := range [][]string{
		{"--addr", addr, "--service", "no.such.Service"},
		{"--addr", "127.0.0.1:1", "--timeout", "500ms"},
	} {
		if _, err := runWhorl(t, append([]string{"health"}, args...)...); err == nil {
			t.Errorf("health %v succeeded, want an error", args)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("failing checks took %v", took)
	}
}
