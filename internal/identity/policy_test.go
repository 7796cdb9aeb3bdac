package identity_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles/tlstest"
)

// servicesAsWorker reads the health request's service name as the worker id
// it acts for (a stand-in for a worker_id field).
func servicesAsWorker(msg any) (string, bool) {
	r, ok := msg.(*healthpb.HealthCheckRequest)
	if !ok || r.GetService() == "" {
		return "", false
	}
	return r.GetService(), true
}

// startPolicyServer serves grpc.health.v1 over mutual TLS under p: Check is
// for workers acting for themselves and clients, Watch for clients, List
// is not in the table.
func startPolicyServer(t *testing.T, ca *tlstest.CA, denied *[]string) string {
	t.Helper()
	var mu sync.Mutex
	p := identity.Policy{
		Server: "test",
		Methods: map[string]identity.Rule{
			"/grpc.health.v1.Health/Check": {Roles: []identity.Role{identity.Worker, identity.Client}, WorkerOf: servicesAsWorker},
			"/grpc.health.v1.Health/Watch": {Roles: []identity.Role{identity.Client}},
		},
		Denied: func(method string, id identity.ID, err error) {
			mu.Lock()
			defer mu.Unlock()
			*denied = append(*denied, method+" "+id.String())
		},
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(ca.Configs(t, identity.Coordinator, "c0").Server)),
		grpc.ChainUnaryInterceptor(p.UnaryInterceptor()), grpc.ChainStreamInterceptor(p.StreamInterceptor()))
	hs := health.NewServer()
	hs.SetServingStatus("w0", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("w1", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func healthClient(t *testing.T, addr string, opt grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// TestPolicyOverRealTLS: each caller presents a real certificate to a real
// gRPC server; the table's decisions come back as the documented codes,
// naming the identity, and every refusal reaches Denied.
func TestPolicyOverRealTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	var denied []string
	addr := startPolicyServer(t, ca, &denied)
	as := func(role identity.Role, name string) healthpb.HealthClient {
		return healthClient(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(ca.Configs(t, role, name).Client)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		errHas string
	}{
		{"worker for itself", func() error {
			_, err := as(identity.Worker, "w0").Check(ctx, &healthpb.HealthCheckRequest{Service: "w0"})
			return err
		}, codes.OK, ""},
		{"worker for another", func() error {
			_, err := as(identity.Worker, "w0").Check(ctx, &healthpb.HealthCheckRequest{Service: "w1"})
			return err
		}, codes.PermissionDenied, `spiffe://whorl/worker/w0 may act only for worker "w0", not "w1"`},
		{"client for any", func() error {
			_, err := as(identity.Client, "alice").Check(ctx, &healthpb.HealthCheckRequest{Service: "w1"})
			return err
		}, codes.OK, ""},
		{"coordinator not allowed", func() error {
			_, err := as(identity.Coordinator, "c1").Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}, codes.PermissionDenied, "role coordinator"},
		{"stream by a worker", func() error {
			s, err := as(identity.Worker, "w0").Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.PermissionDenied, "allows client"},
		{"method not in the table", func() error {
			_, err := as(identity.Client, "alice").List(ctx, &healthpb.HealthListRequest{})
			return err
		}, codes.PermissionDenied, "not a method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.errHas) {
				t.Fatalf("got %v, want %v naming %q", err, tt.code, tt.errHas)
			}
		})
	}
	if len(denied) != 4 {
		t.Errorf("Denied heard %d refusals, want 4: %q", len(denied), denied)
	}
}

// TestHandshakeRefusals: a certificate of another CA, one without an
// identity and one of another trust domain never reach the handler.
func TestHandshakeRefusals(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	var denied []string
	addr := startPolicyServer(t, ca, &denied)
	rogue := tlstest.NewCA(t, "rogue")
	elsewhere := tlstest.NewCAIn(t, "elsewhere", "example.org")
	for name, cfg := range map[string]credentials.TransportCredentials{
		"another CA":           credentials.NewTLS(tlstest.Intruder(t, rogue.Issue(t, identity.Client, "alice"), ca)),
		"no identity":          credentials.NewTLS(tlstest.Intruder(t, ca.Crafted(t, "alice"), ca)),
		"another trust domain": credentials.NewTLS(tlstest.Intruder(t, ca.Crafted(t, "alice", "spiffe://example.org/client/alice"), ca)),
		"two identities":       credentials.NewTLS(tlstest.Intruder(t, ca.Crafted(t, "alice", "spiffe://whorl/client/alice", "spiffe://whorl/coordinator/c0"), ca)),
		"another domain's CA":  credentials.NewTLS(tlstest.Intruder(t, elsewhere.Issue(t, identity.Client, "alice"), ca)),
		"plaintext":            insecure.NewCredentials(),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := healthClient(t, addr, grpc.WithTransportCredentials(cfg)).Check(ctx, &healthpb.HealthCheckRequest{})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("Check = %v, want the handshake refused (Unavailable)", err)
			}
		})
	}
	if len(denied) != 0 {
		t.Errorf("refused handshakes reached the policy: %q", denied)
	}
}
