package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Health asks the gRPC server at addr (a coordinator or a worker) for the
// grpc.health.v1 status of service ("" = the whole server) with tlsCfg
// (nil: plaintext), giving up after timeout; nil means SERVING (`whorl
// health`).
func Health(ctx context.Context, addr, service string, tlsCfg *tls.Config, timeout time.Duration) error {
	conn, err := grpc.NewClient(addr, DialOptions(tlsCfg)...)
	if err != nil {
		return fmt.Errorf("health of %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("health of %s service %q: %w", addr, service, err)
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health of %s service %q: %s", addr, service, st)
	}
	return nil
}
