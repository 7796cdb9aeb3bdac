package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/internal/memlimit"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/model"
	"github.com/whorl-ml/whorl/worker"
)

func init() { register(newCoordinatorCmd, newSubmitCmd, newStatusCmd) }

// coordinatorOptions are the flags of `whorl coordinator`.
type coordinatorOptions struct {
	cfg               coordinator.Config
	peers, logFormat  string
	out               string
	tls               tlsfiles.Files
	snapshotThreshold int
	jobMemory         string
	images            job.StreamConfig
	im2col            int64
}

func newCoordinatorCmd() *cobra.Command {
	o := coordinatorOptions{cfg: coordinator.DefaultConfig(), images: job.DefaultStreamConfig(), im2col: model.DefaultIm2colCache}
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run a raft coordinator (1 embedded node, or one of 3/5)",
		Long: `coordinator runs one member of the raft group that holds the job, its phase,
worker membership and leases, the ring generation, step progress, checkpoints and
results, and serves the coordinator gRPC API (workers, submit, status) with the
grpc.health.v1 service. The raft log, stable store, snapshots and checkpoint blobs
live in --data-dir; restarting with the same --data-dir rejoins the group.

Membership: no --peers and no --peers-dns runs a single embedded node;
--peers lists every member's raft address (the first one bootstraps the group);
--peers-dns NAME derives the members of a StatefulSet behind the headless
Service NAME: with --id coordinator-K the peers are coordinator-0..N-1.NAME
(--replicas N), on the port of --raft-addr. Only coordinator-0 bootstraps, and
only when it has no raft state.

The leader runs the job: pending -> pretraining (workers) -> baseline ->
finetuning -> evaluating -> done, writing the report to --out. It does not
hold the job's photos: it decodes each once at the start (to check it and
measure the normaliser) and reads them again as the phases need them, through
a cache of --image-cache bytes.

Admission: the leader refuses at submit a job whose estimated peak memory for
the phases it runs (the photos' catalogue and cache, the supervised network and
its workspace, the probes' features) exceeds --job-memory-limit, naming the estimate and its
parts. "auto" takes GOMEMLIMIT when set (the manifests set it to the
container's memory limit), else the cgroup's memory limit (v2 memory.max or v1
memory.limit_in_bytes), else admits all.`,
		Example: `  whorl coordinator --id c0 --data-dir /tmp/c0          # single embedded node
  whorl coordinator --id c0 --raft-addr 127.0.0.1:7400 --grpc-addr 127.0.0.1:7401 --data-dir /tmp/c0 \
      --peers c0=127.0.0.1:7400,c1=127.0.0.1:7410,c2=127.0.0.1:7420
  whorl coordinator --id "$HOSTNAME" --raft-addr 0.0.0.0:7400 --grpc-addr 0.0.0.0:7401 \
      --data-dir /data --peers-dns coordinator.whorl.svc.cluster.local --replicas 3 --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCoordinator(cmd.Context(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	c := &o.cfg
	f.StringVar(&c.ID, "id", host, "raft server id (with --peers-dns: the pod name <name>-<ordinal>)")
	f.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, "raft TCP address HOST:PORT")
	f.StringVar(&c.GRPCAddr, "grpc-addr", c.GRPCAddr, "gRPC address HOST:PORT (advertised to workers and peers)")
	f.StringVar(&c.DataDir, "data-dir", "", "directory of the raft log, snapshots and checkpoint blobs (required)")
	f.StringVar(&o.peers, "peers", "", "static raft membership ID=HOST:PORT,... (raft addresses; first one bootstraps)")
	f.StringVar(&c.PeersDNS, "peers-dns", "", "headless Service name giving the peers <name>-<i>.<service>")
	cliflag.IntRange(f, &c.Replicas, "replicas", c.Replicas, 1, 9, "number of coordinators with --peers-dns")
	f.StringVar(&c.MetricsAddr, "metrics-addr", "", `Prometheus /metrics address HOST:PORT ("" = off)`)
	cliflag.Enum(f, &o.logFormat, "log-format", "text", []string{"text", "json"}, "log format")
	cliflag.DurationRange(f, &c.HeartbeatInterval, "heartbeat", c.HeartbeatInterval, 50*time.Millisecond, time.Minute, "worker heartbeat interval")
	cliflag.DurationRange(f, &c.Lease, "lease", c.Lease, 200*time.Millisecond, 10*time.Minute, "worker lease (>= 2x --heartbeat)")
	cliflag.DurationRange(f, &c.WorkerWait, "worker-wait", c.WorkerWait, time.Second, 24*time.Hour, "how long pretraining waits with no workers before the job fails")
	cliflag.FloatRange(f, &c.StragglerFactor, "straggler-factor", c.StragglerFactor, 1.05, 100, "name ranks slower than the median compute time by this factor")
	cliflag.IntRange(f, &c.KeepJobs, "keep-jobs", c.KeepJobs, 0, coordinator.MaxKeepJobs, "finished jobs whose results (report, files) are kept besides the current job's, for whorl fetch --job")
	cliflag.IntRange(f, &o.snapshotThreshold, "snapshot-threshold", int(c.SnapshotThreshold), 16, 1<<20, "raft log entries between snapshots")
	f.StringVar(&o.out, "out", "whorl-out", "folder of the job report, plots and manifest (written by the leader)")
	f.StringVar(&o.jobMemory, "job-memory-limit", "auto", `refuse jobs estimated to need more memory on the leader: a size (4GiB), "auto" (GOMEMLIMIT, else the cgroup's memory limit) or "off"`)
	cliflag.ByteSize(f, &o.images.CacheBytes, "image-cache", o.images.CacheBytes, worker.MinImageCache, worker.MaxImageCache, "decoded photos the leader's phases keep")
	cliflag.IntRange(f, &o.images.ReadAhead, "read-ahead", o.images.ReadAhead, 0, worker.MaxReadAhead, "batches of photos the leader's phases read ahead")
	cliflag.ByteSize(f, &o.im2col, "im2col-cache", o.im2col, 0, model.DefaultIm2colCache, "im2col matrices the leader's networks keep from forward for backward: less is less memory and slower phases, the same results")
	tlsFlags(f, &o.tls, "PEM certificate")
	insecureFlag(f, &c.Insecure)
	return cmd
}

// runCoordinator builds the node from the options and runs it until ctx
// ends (SIGINT/SIGTERM).
func runCoordinator(ctx context.Context, logw io.Writer, o coordinatorOptions) error {
	c := o.cfg
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}
	if o.peers != "" {
		peers, err := coordinator.ParsePeers(o.peers)
		if err != nil {
			return fmt.Errorf("--peers: %w", err)
		}
		c.Peers = peers
	}
	c.SnapshotThreshold = uint64(o.snapshotThreshold)
	c.TrailingLogs = max(c.SnapshotThreshold/2, 8)
	c.TLS = o.tls
	c.Logger = newLogger(logw, o.logFormat, "info")
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	c.Phases = &experiment.Runner{OutDir: o.out, Jobs: true, Images: o.images}
	if o.im2col < model.DefaultIm2colCache {
		model.SetIm2colCache(o.im2col)
	}
	limit, from, err := memlimit.Resolve("--job-memory-limit", o.jobMemory)
	if err != nil {
		return err
	}
	c.JobMemoryLimit = limit
	c.Logger.Info("job admission", "job_memory_limit_bytes", limit, "from", from)
	n, err := coordinator.New(c)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}
