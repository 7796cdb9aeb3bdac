package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() { register(newCancelCmd) }

// cancelOptions are the flags of `whorl cancel`.
type cancelOptions struct {
	client coordClientOptions
	job    string
}

func newCancelCmd() *cobra.Command {
	var o cancelOptions
	cmd := &cobra.Command{
		Use:   "cancel",
		Short: "Cancel the running job: its workers go idle and the cluster takes the next job",
		Long: `cancel ends the coordinators' running job (or --job ID): it fails with the reason
"cancelled by <you>" (your certificate's identity with mTLS, where only a client
identity may cancel), the workers go idle, a phase running on the leader stops,
and the cluster accepts the next submission. Cancelling a job that is already over
is refused.`,
		Example: `  whorl cancel --coordinator 127.0.0.1:7401
  whorl cancel --coordinator c0:7401 --job job-1a2b3c4d-1765000000 --tls-cert admin.pem --tls-key admin-key.pem --tls-ca ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCancel(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	o.client.flags(cmd.Flags())
	cmd.Flags().StringVar(&o.job, "job", "", `job id to cancel ("" = the current job)`)
	return cmd
}

func runCancel(ctx context.Context, w io.Writer, o cancelOptions) error {
	cl, err := o.client.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.CancelJob(ctx, o.job)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "job %s cancelled (it was in %s)\n", res.GetJobId(), res.GetPhase().Label())
	return err
}
