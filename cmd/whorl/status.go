package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
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
	if o.json {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode status: %w", err)
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	printStatus(w, st)
	return nil
}

// statusLine is a one-line summary of a status.
func statusLine(st *pb.JobStatusResponse) string {
	s := fmt.Sprintf("job %s  %s", st.GetJobId(), st.GetPhase().Label())
	if st.GetPhase() == pb.Phase_PHASE_PRETRAINING { // the wire's epoch is 0-based, the one in progress
		s += fmt.Sprintf("  epoch %d/%d step %d/%d  generation %d  workers %d",
			min(st.GetEpoch()+1, st.GetTotalEpochs()), st.GetTotalEpochs(), st.GetNextStep(), st.GetTotalSteps(), st.GetGeneration(), len(st.GetWorkers()))
	}
	if r := st.GetFailureReason(); r != "" {
		s += "  reason: " + r
	}
	if e := st.GetStoreError(); e != "" {
		s += "  STORE ERROR: " + e
	}
	return s
}

// printStatus prints a human-readable status.
func printStatus(w io.Writer, st *pb.JobStatusResponse) {
	if st.GetLeaderId() == "" {
		fmt.Fprintln(w, "NO RAFT LEADER KNOWN: this is one coordinator's own state, possibly old (--stale)")
	}
	if st.GetJobId() == "" {
		fmt.Fprintln(w, "no job submitted")
	} else {
		fmt.Fprintln(w, statusLine(st))
	}
	fmt.Fprintf(w, "leader %s (%s)  generation %d (%d changes)  commit index %d\n", st.GetLeaderId(), st.GetLeaderAddr(),
		st.GetGeneration(), st.GetGenerationChanges(), st.GetCommitIndex())
	if ws := st.GetWaitingSince(); ws != nil {
		fmt.Fprintf(w, "waiting for workers since %s\n", ws.AsTime().Format(time.RFC3339))
	}
	if ck := st.GetLatestCheckpoint(); ck != nil {
		fmt.Fprintf(w, "checkpoint %s at epoch %d step %d (%d bytes)\n", ck.GetDigest()[:min(12, len(ck.GetDigest()))], ck.GetEpoch()+1, ck.GetStep(), ck.GetSize())
	}
	if s := st.GetStragglers(); len(s) > 0 {
		fmt.Fprintf(w, "stragglers: %s\n", strings.Join(s, ", "))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCOORDINATOR\tRAFT\tGRPC\tROLE")
	for _, c := range st.GetCoordinators() {
		role := c.GetSuffrage()
		if c.GetLeader() {
			role = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.GetId(), c.GetRaftAddr(), c.GetGrpcAddr(), role)
	}
	fmt.Fprintln(tw, "\nWORKER\tRANK\tRING\tLAST HEARTBEAT\tCOMPUTE/STEP\tALL-REDUCE WAIT\tSTRAGGLER")
	for _, wk := range st.GetWorkers() {
		hb := "-"
		if t := wk.GetLastHeartbeat(); t != nil {
			hb = time.Since(t.AsTime()).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%v\t%v\t%v\n", wk.GetWorkerId(), wk.GetRank(), wk.GetRingAddr(), hb,
			wk.GetStepTime().AsDuration().Round(time.Millisecond), wk.GetAllreduceWait().AsDuration().Round(time.Millisecond), wk.GetStraggler())
	}
	tw.Flush()
}

// printResults prints a finished job's results; done is false while the
// job runs.
func printResults(w io.Writer, r *pb.FetchResultsResponse) (done bool, err error) {
	switch r.GetPhase() {
	case pb.Phase_PHASE_DONE:
		fmt.Fprintf(w, "job %s done\nbaseline: %s\nreport: %s\n", r.GetJobId(), r.GetBaselineJson(), r.GetReportJson())
		return true, nil
	case pb.Phase_PHASE_FAILED:
		return true, fmt.Errorf("job %s failed: %s", r.GetJobId(), r.GetFailureReason())
	}
	return false, nil
}
