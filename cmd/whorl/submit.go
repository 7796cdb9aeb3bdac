package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/session"
)

// coordClientOptions are the flags shared by the commands that call a
// coordinator.
type coordClientOptions struct {
	addrs   string
	timeout time.Duration
	tls     tlsfiles.Files
}

func (o *coordClientOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.addrs, "coordinator", "127.0.0.1:7401", "coordinator gRPC address(es) HOST:PORT,...; any member works, the client follows the leader")
	cliflag.DurationRange(f, &o.timeout, "timeout", 30*time.Second, time.Second, time.Hour, "give up after this long (leader elections are retried)")
	tlsFlags(f, &o.tls, "PEM client certificate")
}

// dial returns a leader-following client.
func (o *coordClientOptions) dial() (*client.Client, error) {
	tc, err := tlsfiles.Load(o.tls)
	if err != nil {
		return nil, err
	}
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.RetryTimeout, cfg.TLS = strings.Split(o.addrs, ","), o.timeout, tc.Client
	return client.New(cfg)
}

// submitOptions are the flags of `whorl submit`.
type submitOptions struct {
	client       coordClientOptions
	job, preset  string
	wait         bool
	pollInterval time.Duration
	seeds        []int
	out          string
}

func newSubmitCmd() *cobra.Command {
	var o submitOptions
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "Submit a job (an experiment configuration) to the coordinators",
		Long: `submit sends a job to the raft coordinators and prints its id. The job is the
--preset configuration, overlaid with the keys of --job FILE (YAML or JSON, the
keys of the experiment configuration as in report.json's "config", e.g.
pretrain.epochs). Unknown keys and out-of-range values are rejected, naming the
key. --job is distinct from the global --config, which sets flags.

With --wait, submit follows the job until it is done (or failed) and prints the
results.

--seeds 1,2,3 --out DIR runs the job once per split seed on the same cluster, one
after the other (a cluster runs one job at a time), keeps each seed's report in
DIR/seed-N (report.json, report.md and the plots; a rerun skips the seeds already
there) and writes the aggregate report.json and report.md to DIR: mean ± sd of
every accuracy and the paired gain's 95% t-interval, as whorl run --seeds.`,
		Example: `  whorl submit --coordinator 127.0.0.1:7401
  whorl submit --coordinator c0:7401,c1:7401 --preset paper --job job.yaml --wait
  cat job.yaml
    pretrain:
      epochs: 2
      global_batch: 64
    checkpoint_every_steps: 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSubmit(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	o.client.flags(f)
	f.StringVar(&o.job, "job", "", "YAML/JSON file of experiment configuration keys overlaying --preset")
	cliflag.Enum(f, &o.preset, "preset", job.PresetQuick, job.Presets(), "base experiment configuration")
	f.BoolVar(&o.wait, "wait", false, "follow the job until it ends and print its results")
	cliflag.DurationRange(f, &o.pollInterval, "poll", 2*time.Second, 100*time.Millisecond, time.Minute, "status poll interval with --wait")
	f.IntSliceVar(&o.seeds, "seeds", nil, "run the job once per seed (1,2,3) on this cluster, one after another, and write each seed's report and the aggregate to --out (implies --wait)")
	f.StringVar(&o.out, "out", "", "folder for --seeds' reports (DIR/seed-N and the aggregate)")
	return cmd
}

// runSubmit submits the job and, with --wait, follows it.
func runSubmit(ctx context.Context, w io.Writer, o submitOptions) error {
	base, err := job.PresetWithFile(o.preset, o.job)
	if err != nil {
		return fmt.Errorf("--job: %w", err)
	}
	cl, err := o.client.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	if len(o.seeds) > 0 {
		if o.out == "" {
			return errors.New("--seeds needs --out (the folder for each seed's report and the aggregate)")
		}
		return session.SubmitSeeds(ctx, w, cl, base, o.seeds, o.out, o.pollInterval)
	}
	id, err := cl.SubmitJob(ctx, base.JSON())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "submitted job %s\n", id)
	if !o.wait {
		return nil
	}
	_, err = session.WatchJob(ctx, w, cl, id, o.pollInterval)
	return err
}
