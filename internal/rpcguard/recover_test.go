package rpcguard

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// panickingHealth is a health server whose Check and Watch panic.
type panickingHealth struct {
	healthpb.UnimplementedHealthServer
}

func (panickingHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	panic("boom")
}

func (panickingHealth) Watch(*healthpb.HealthCheckRequest, grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	panic(errors.New("stream boom"))
}

// TestRecoveryOnARealServer calls a real gRPC server whose handlers panic:
// each call fails with Internal naming the method and the server, the log
// has the panic and its stack, and the server keeps serving.
func TestRecoveryOnARealServer(t *testing.T) {
	var logs bytes.Buffer
	r := New(slog.New(slog.NewTextHandler(&logs, nil)), "worker")
	gs := grpc.NewServer(r.Options()...)
	healthpb.RegisterHealthServer(gs, panickingHealth{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	ctx := context.Background()
	for range 2 { // the server lives on after the first panic
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "/grpc.health.v1.Health/Check") ||
			!strings.Contains(err.Error(), "the worker logged it") {
			t.Fatalf("unary panic: %v, want Internal naming the method and the server", err)
		}
	}
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = w.Recv()
	}
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "/grpc.health.v1.Health/Watch") {
		t.Fatalf("stream panic: %v, want Internal naming the method", err)
	}
	for _, want := range []string{"handler panicked", "boom", "stream boom", "recover_test.go"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestRecoveryPassesResults: a handler that does not panic is untouched.
func TestRecoveryPassesResults(t *testing.T) {
	r := New(nil, "coordinator")
	resp, err := r.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"},
		func(context.Context, any) (any, error) { return "ok", nil })
	if resp != "ok" || err != nil {
		t.Fatalf("Unary = %v, %v; want the handler's result", resp, err)
	}
	want := status.Error(codes.NotFound, "no")
	if err := r.Stream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/x.Y/S"},
		func(any, grpc.ServerStream) error { return want }); err != want {
		t.Fatalf("Stream = %v, want the handler's error", err)
	}
}
