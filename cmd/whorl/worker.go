package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/worker"
)

func init() { register(newWorkerCmd) }

// workerOptions are the flags of `whorl worker`.
type workerOptions struct {
	cfg          worker.Config
	coordinators string
	logFormat    string
	logLevel     string
	// ringTransport names the cluster.Transport of the ring lanes.
	ringTransport string
}

func newWorkerCmd() *cobra.Command {
	o := workerOptions{cfg: worker.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a training worker of the distributed rotation pretraining",
		Long: `worker registers with the coordinator (any one address of the raft group; the
client follows the leader), heartbeats its lease, and trains its part of every
global step data-parallel: rotation batch, forward/backward with synchronised
BatchNorm, ring all-reduce of the gradients with the other workers (served on
--listen, with grpc.health.v1), the same SGD step on every replica. Rank 0
commits a checkpoint through the coordinator every K steps.

When a worker dies or leaves, the others abort the step in flight, form the
next ring generation and continue from their current weights; a new worker gets
the current weights from its peers. SIGTERM aborts the step, leaves the ring
and deregisters within --leave-timeout.

Data: --data-source local reads the photos itself (the embedded set, or --data
DIR, which must be the dataset the coordinator prepared: the manifest digests
are compared); --data-source coordinator fetches the bytes of its images from
the coordinator, so the worker needs no volume.`,
		Example: `  whorl worker --coordinator 127.0.0.1:7401 --listen 127.0.0.1:7500
  whorl worker --id w1 --coordinator c0:7401,c1:7401,c2:7401 --listen 0.0.0.0:7500 \
      --advertise w1.workers:7500 --data /data/flowers --metrics-addr :9100 --log-format json
  whorl worker --coordinator 127.0.0.1:7401 --listen 127.0.0.1:0 --data-source coordinator \
      --tls-cert w.pem --tls-key w-key.pem --tls-ca ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	c := &o.cfg
	f.StringVar(&c.ID, "id", c.ID, "worker id, stable across restarts (default: host name)")
	f.StringVar(&o.coordinators, "coordinator", strings.Join(c.Coordinators, ","), "coordinator gRPC address(es) HOST:PORT[,HOST:PORT...]")
	f.StringVar(&c.Listen, "listen", c.Listen, "address of the ring all-reduce gRPC server (port 0: any free port)")
	f.StringVar(&c.Advertise, "advertise", "", `ring address announced to the coordinator ("" = the listener's; on 0.0.0.0 or ::, the host's first non-loopback IPv4)`)
	cliflag.Enum(f, &c.Data, "data-source", c.Data, []string{worker.DataLocal, worker.DataCoordinator}, "where the images come from")
	f.StringVar(&c.DataDir, "data", "", `class folder, or packed data set (folder or file://, s3://, gs:// URL) ("" = the job's data)`)
	cliflag.ByteSize(f, &c.ImageCache, "image-cache", c.ImageCache, worker.MinImageCache, worker.MaxImageCache, "decoded images kept of a streamed packed data set")
	cliflag.IntRange(f, &c.ReadAhead, "read-ahead", c.ReadAhead, 0, worker.MaxReadAhead, "steps of images a streaming worker reads ahead")
	cliflag.ByteSize(f, &c.Im2colCache, "im2col-cache", c.Im2colCache, 0, model.DefaultIm2colCache, "im2col matrices the network keeps from forward for backward: less is less memory and slower steps, the same weights")
	cliflag.DurationRange(f, &c.Heartbeat, "heartbeat", c.Heartbeat, worker.MinHeartbeat, worker.MaxHeartbeat, "lease renewal interval (the coordinator may ask for less)")
	cliflag.DurationRange(f, &c.AssignmentWait, "assignment-wait", c.AssignmentWait, worker.MinWait, worker.MaxWait, "bound of one long poll for a new assignment")
	cliflag.DurationRange(f, &c.RingTimeout, "ring-timeout", c.RingTimeout, worker.MinRing, worker.MaxRing, "deadline of one ring collective (covers the slowest rank's compute)")
	transportFlag(f, &o.ringTransport, "ring-transport")
	cliflag.DurationRange(f, &c.LeaveTimeout, "leave-timeout", c.LeaveTimeout, worker.MinLeave, worker.MaxLeave, "bound of the graceful leave on SIGTERM")
	cliflag.IntRange(f, &c.Threads, "threads", 0, 0, worker.MaxThreads, "compute goroutines (0 = all cores)")
	f.StringVar(&c.MetricsAddr, "metrics-addr", "", `Prometheus /metrics address HOST:PORT ("" = off)`)
	tlsFlags(f, &c.TLS, "PEM certificate")
	insecureFlag(f, &c.Insecure)
	cliflag.Enum(f, &o.logFormat, "log-format", "text", []string{"text", "json"}, "log format")
	cliflag.Enum(f, &o.logLevel, "log-level", "info", []string{"debug", "info", "warn", "error"}, "log level")
	return cmd
}

// runWorker builds the worker from the options and runs it until ctx ends
// (SIGINT/SIGTERM), then leaves gracefully.
func runWorker(ctx context.Context, logw io.Writer, o workerOptions) error {
	c := o.cfg
	c.Coordinators = nil
	for _, a := range strings.Split(o.coordinators, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Coordinators = append(c.Coordinators, a)
		}
	}
	c.Logger = newLogger(logw, o.logFormat, o.logLevel)
	c.RingTransport, _ = cluster.ParseTransport(o.ringTransport) // the flag accepts valid names only
	w, err := worker.New(c)
	if err != nil {
		return fmt.Errorf("whorl worker: %w", err)
	}
	start := time.Now()
	err = w.Run(ctx)
	c.Logger.Info("worker stopped", "ran", time.Since(start).Round(time.Millisecond), "err", err)
	return err
}

// newLogger is the slog logger of a coordinator or worker: text or JSON at
// level to w.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
