package cluster

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestSilentConnectionsAreBounded floods a worker's port (a real gRPC
// server on the ring's Listener) with connections that never speak: past
// the cap a new one is closed at once, the silent ones are dropped within
// Config.Timeout, and a real client is served again afterwards.
func TestSilentConnectionsAreBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Timeout = 500 * time.Millisecond
	svc, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(svc.ServerOptions()...)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	ml := svc.Listener(lis).(*muxListener)
	ml.mu.Lock()
	ml.maxPending = 3
	ml.mu.Unlock()
	go func() { _ = gs.Serve(ml) }()
	defer gs.Stop()
	addr := lis.Addr().String()
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			_ = c.Close()
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	waitFor(t, "3 silent connections held", func() bool { ml.mu.Lock(); defer ml.mu.Unlock(); return len(ml.routing) == 3 })
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a connection past the cap was kept (read %d bytes)", n)
	}
	ml.mu.Lock()
	refused := ml.refused
	ml.mu.Unlock()
	if refused < 1 {
		t.Fatalf("refused %d connections past the cap, want at least 1", refused)
	}
	// the silent ones time out (Config.Timeout) and the port serves again
	waitFor(t, "silent connections dropped", func() bool { ml.mu.Lock(); defer ml.mu.Unlock(); return len(ml.routing) == 0 })
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("a real client after the flood: %v", err)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for: %s", what)
}
