package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/internal/identity"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
)

func init() { register(newHealthCmd) }

// healthOptions are the flags of `whorl health`.
type healthOptions struct {
	addr, service string
	timeout       time.Duration
	tls           tlsfiles.Files
}

func newHealthCmd() *cobra.Command {
	var o healthOptions
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a coordinator's or worker's grpc.health.v1 service (exit 0 when SERVING)",
		Long: `health asks the gRPC server at --addr for the status of --service with the
standard grpc.health.v1 Check and exits 0 when it is SERVING, 1 otherwise (not
serving, unknown service, unreachable). It needs no shell, so a container of the
image (FROM scratch) can run it as its healthcheck. A coordinator's services:
"" and whorl.coordinator.v1.CoordinatorService (ready: a raft leader is known),
whorl.coordinator.v1.Liveness (the process answers). A worker's "" is SERVING
while it runs. With --tls-*, any whorl identity of the trust domain may ask.

--addr may name environment variables as ${NAME}: a Kubernetes exec probe has
no shell to expand them, and the pod's own address is only in its environment
(--addr '${POD_IP}:7410' with the container's WHORL_TLS_* files: a probe
that can present the pod's certificate, which the kubelet's gRPC probe cannot).`,
		Example: `  whorl health --addr 127.0.0.1:7401
  whorl health --addr c0:7401 --service whorl.coordinator.v1.CoordinatorService
  whorl health --addr '${POD_IP}:7410'    # a Kubernetes exec probe`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHealth(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:7401", "gRPC address HOST:PORT of the coordinator or worker")
	f.StringVar(&o.service, "service", "", `grpc.health.v1 service name ("" = the whole server)`)
	cliflag.DurationRange(f, &o.timeout, "timeout", 3*time.Second, 100*time.Millisecond, time.Minute, "give up after this long")
	tlsFlags(f, &o.tls, "PEM client certificate")
	return cmd
}

func runHealth(ctx context.Context, w io.Writer, o healthOptions) error {
	addr, err := expandAddr(o.addr)
	if err != nil {
		return err
	}
	o.addr = addr
	tc, err := tlsfiles.Load(o.tls)
	if err != nil {
		return err
	}
	if err := client.Health(ctx, o.addr, o.service, tc.ClientOf(identity.Coordinator, identity.Worker), o.timeout); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s %q SERVING\n", o.addr, o.service)
	return nil
}

// expandAddr replaces ${NAME} (and $NAME) in --addr by the environment
// variable, refusing one that is unset or empty.
func expandAddr(addr string) (string, error) {
	var missing []string
	out := os.Expand(addr, func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("--addr %q: environment variable %s is not set", addr, strings.Join(missing, ", "))
	}
	return out, nil
}
