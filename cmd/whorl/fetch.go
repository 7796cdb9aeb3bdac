package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/bytesize"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

func init() { register(newFetchCmd) }

// fetchOptions are the flags of `whorl fetch`.
type fetchOptions struct {
	client coordClientOptions
	job    string
	out    string
}

func newFetchCmd() *cobra.Command {
	var o fetchOptions
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Download a finished job's results (report, plots, checkpoints) from the coordinators",
		Long: `fetch downloads the result files of a done job into --out: report.json, report.md,
the plots, config.json, manifest.json, baseline.json and the networks (baseline,
pretrained, fine-tuned, the self-trained students when the job trained them), and
pretrained-checkpoint.safetensors, the workers' final pretraining checkpoint as
committed. When fine-tuning ends, the leader stores these files as blobs on a
majority of the coordinators, so any coordinator serves them, also after the
leader changed; the image needs no shell and no kubectl cp.

Each file is checked against its SHA-256 and size while it is written and appears
only when it matches (a mismatch names the file and both digests and leaves
nothing); a file already in --out with the right digest is kept, so a rerun
resumes. A job that is not done is refused, naming its phase or why it failed.

The coordinators keep the results of the current job and of the last finished
jobs before it (8 by default: whorl coordinator --keep-jobs), so --job fetches
an earlier job's while later ones run; a job older than those is dropped when the
next job is submitted, and its files are deleted about ten minutes later.
--timeout bounds each file's download too: raise it for large files over a slow
link.`,
		Example: `  whorl fetch --coordinator 127.0.0.1:7401 --out results
  whorl fetch --coordinator c0:7401,c1:7401,c2:7401 --job job-1a2b3c4d-1765000000 --out results \
    --tls-cert admin.pem --tls-key admin-key.pem --tls-ca ca.pem
  whorl predict --checkpoint results/finetuned.safetensors --image rose.jpg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFetch(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	o.client.flags(cmd.Flags())
	cmd.Flags().StringVar(&o.job, "job", "", `job id whose results to fetch: the current job or one of the last finished ones ("" = the current job)`)
	cmd.Flags().StringVar(&o.out, "out", "", "folder to download into (created when missing)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func runFetch(ctx context.Context, w io.Writer, o fetchOptions) error {
	cl, err := o.client.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.FetchResults(ctx, o.job)
	if errors.Is(err, client.ErrNoJob) && o.job != "" {
		return fmt.Errorf("fetch results of job %s: %w; a job that is not the current one nor among the last finished ones the "+
			"coordinators keep (whorl coordinator --keep-jobs) has had its files deleted, or will about ten minutes after it "+
			"dropped out (the --out folder of the coordinator that led it may still hold them)", o.job, err)
	}
	if err != nil {
		return fmt.Errorf("fetch results: %w", err)
	}
	if err := fetchable(r); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("fetch results: %w", err)
	}
	return download(ctx, w, cl, r, o.out)
}

// fetchable refuses a job that is not done, or that lists no result files
// or a hostile one.
func fetchable(r *pb.FetchResultsResponse) error {
	switch {
	case r.GetPhase() == pb.Phase_PHASE_FAILED:
		return fmt.Errorf("job %s failed (%s): it has no results to fetch", r.GetJobId(), r.GetFailureReason())
	case r.GetPhase() != pb.Phase_PHASE_DONE:
		return fmt.Errorf("job %s is in phase %s, not done: fetch its results once whorl status shows it done",
			r.GetJobId(), r.GetPhase().Label())
	case len(r.GetArtifacts()) == 0:
		return fmt.Errorf("job %s is done but lists no result files: the coordinator that fine-tuned it writes none "+
			"(no --out), or it predates stored results", r.GetJobId())
	}
	return client.CheckArtifacts(r.GetArtifacts())
}

// download fetches every artifact into dir, printing a line per file and a
// summary.
func download(ctx context.Context, w io.Writer, cl *client.Client, r *pb.FetchResultsResponse, dir string) error {
	var fetched, kept int
	var total uint64
	for i, a := range r.GetArtifacts() {
		got, err := cl.DownloadArtifact(ctx, dir, a)
		if err != nil {
			return fmt.Errorf("fetch results of job %s: %w (%d of %d files in %s; rerun to resume)",
				r.GetJobId(), err, i, len(r.GetArtifacts()), dir)
		}
		how := "present"
		if got {
			how, fetched = "fetched", fetched+1
		} else {
			kept++
		}
		total += a.GetSize()
		fmt.Fprintf(w, "%-8s %-34s %12d bytes  sha256 %.12s\n", how, a.GetName(), a.GetSize(), a.GetDigest())
	}
	_, err := fmt.Fprintf(w, "job %s: %d files (%s) in %s: %d fetched, %d already present\n",
		r.GetJobId(), len(r.GetArtifacts()), bytesize.Human(int64(total)), dir, fetched, kept)
	return err
}
