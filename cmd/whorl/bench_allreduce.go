package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/whorl-ml/whorl/cluster"
	"github.com/whorl-ml/whorl/cluster/ringbench"
	"github.com/whorl-ml/whorl/internal/cliflag"
)

func init() { registerBench(newBenchAllreduceCmd, newBenchAllreduceWorkerCmd) }

func newBenchAllreduceCmd() *cobra.Command {
	var o ringbench.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "allreduce",
		Short: "Measure the ring all-reduce on loopback against raw TCP in the same ring",
		Long: `Starts N ring members on loopback (goroutines of this process, or child
processes with --procs), runs warm-up and timed all-reduces of a float32 buffer,
checks the result bit for bit against the serial sum in ring order, and prints
algbw = bytes/time and busbw = algbw*2(N-1)/N (as nccl-tests define them).
In the same run it measures the physical limit of that topology: N plain TCP
loopback connections arranged as the same ring, all sending at once; tcp is
the per-link bandwidth and ratio = busbw/tcp.`,
		Example: `  whorl bench allreduce --workers 4 --bytes 64MiB
  whorl bench allreduce --workers 2 --bytes 1MiB --iters 50 --json
  whorl bench allreduce --workers 4 --bytes 16MiB --procs
  whorl bench allreduce --workers 4 --bytes 16MiB --tls     # the cost of mutual TLS: compare with the line above`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := ringbench.Run(cmd.Context(), o, spawnBenchWorker)
			if err != nil {
				return err
			}
			return res.Print(cmd.OutOrStdout(), asJSON)
		},
	}
	f := cmd.Flags()
	allreduceFlags(f, &o)
	f.BoolVar(&o.Procs, "procs", false, "run every member in its own process (re-executes this binary)")
	f.BoolVar(&o.TLS, "tls", false, "mutual TLS on the ring, as workers with --tls-* run it (throwaway worker identities; in-process only)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func newBenchAllreduceWorkerCmd() *cobra.Command {
	var o ringbench.Options
	var rank int
	cmd := &cobra.Command{
		Use:     "allreduce-worker",
		Short:   "One ring member of `whorl bench allreduce --procs` (internal)",
		Example: `  whorl bench allreduce --procs --workers 4 --bytes 16MiB`,
		Hidden:  true,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return ringbench.Worker(cmd.Context(), o, rank, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	cliflag.IntRange(f, &rank, "rank", 0, 0, 63, "this member's rank")
	allreduceFlags(f, &o)
	return cmd
}

// allreduceFlags are the ring's settings, which `bench allreduce` passes
// on to each `bench allreduce-worker` of --procs (spawnBenchWorker).
func allreduceFlags(f *pflag.FlagSet, o *ringbench.Options) {
	cliflag.IntRange(f, &o.Workers, "workers", 4, 1, 64, "ring members")
	cliflag.ByteSize(f, &o.Bytes, "bytes", 64<<20, 4, 4<<30, "buffer size (forms: 1048576, 64KiB, 16MiB, 1GiB)")
	cliflag.IntRange(f, &o.Iters, "iters", 10, 1, 100000, "timed iterations")
	cliflag.IntRange(f, &o.Warmup, "warmup", 2, 1, 1000, "warm-up iterations (the first is checked)")
	cliflag.IntRange(f, &o.Streams, "streams", cluster.DefaultConfig().Streams, 1, cluster.MaxStreams, "gRPC streams per ring link")
	transportFlag(f, &o.Transport, "transport")
	cliflag.ByteSize(f, &o.Chunk, "chunk", int64(cluster.DefaultConfig().ChunkBytes), cluster.MinChunkBytes, cluster.MaxChunkBytes, "largest message payload")
	cliflag.DurationRange(f, &o.Timeout, "timeout", time.Minute, time.Second, time.Hour, "deadline of one all-reduce")
}

// spawnBenchWorker starts this binary's hidden `bench allreduce-worker`
// as member rank of a --procs benchmark.
func spawnBenchWorker(ctx context.Context, o ringbench.Options, rank int) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.CommandContext(ctx, exe, "bench", "allreduce-worker",
		"--rank", strconv.Itoa(rank), "--workers", strconv.Itoa(o.Workers),
		"--bytes", strconv.FormatInt(o.Bytes, 10), "--iters", strconv.Itoa(o.Iters),
		"--warmup", strconv.Itoa(o.Warmup), "--streams", strconv.Itoa(o.Streams),
		"--chunk", strconv.FormatInt(o.Chunk, 10), "--timeout", o.Timeout.String(), "--transport", o.Transport)
}
