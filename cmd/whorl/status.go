package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"
	"github.com/whorl-ml/whorl/session"
)

// statusOptions are the flags of `whorl status`.
type statusOptions struct {
	client coordClientOptions
	json   bool
	stale  bool
}

func newStatusCmd() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the job, workers, leader and stragglers as the raft leader sees them",
		Long: `status prints the job's phase and progress (epoch, step), the ring generation, the
raft leader and members, the latest checkpoint, and every worker with its rank,
last heartbeat, median compute time and all-reduce wait; stragglers (slower
than the median by the coordinator's --straggler-factor) are marked. --json
prints the JobStatus message as JSON.

Only the raft leader's view is shown: a coordinator that knows no leader
(during an election, or right after a restart, when its state may be old or
empty) is retried until --timeout. --stale then takes that coordinator's own
state instead, marked as such (an empty leaderId in JSON).`,
		Example: `  whorl status --coordinator 127.0.0.1:7401
  whorl status --coordinator c0:7401,c1:7401,c2:7401 --json | jq .phase`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	o.client.flags(cmd.Flags())
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	cmd.Flags().BoolVar(&o.stale, "stale", false, "when no raft leader is known, show the reached coordinator's own, possibly old, state")
	return cmd
}

func runStatus(ctx context.Context, w io.Writer, o statusOptions) error {
	cl, err := o.client.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	status := cl.JobStatus
	if o.stale {
		status = cl.JobStatusAllowStale
	}
	st, err := status(ctx)
	if err != nil {
		return err
	}
	return session.PrintStatus(w, st, o.json)
}
