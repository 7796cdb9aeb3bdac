package session

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// StatusLine is a one-line summary of a job's status (what `whorl submit
// --wait` prints as the job moves).
func StatusLine(st *pb.JobStatusResponse) string {
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

// PrintStatus prints a status (`whorl status`) as the JobStatus message in
// JSON, or for people: the job, the leader, the checkpoint, the
// stragglers, then a table of the coordinators and one of the workers.
func PrintStatus(w io.Writer, st *pb.JobStatusResponse, asJSON bool) error {
	if asJSON {
		b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode status: %w", err)
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	if st.GetLeaderId() == "" {
		fmt.Fprintln(w, "NO RAFT LEADER KNOWN: this is one coordinator's own state, possibly old (--stale)")
	}
	if st.GetJobId() == "" {
		fmt.Fprintln(w, "no job submitted")
	} else {
		fmt.Fprintln(w, StatusLine(st))
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
	return tw.Flush()
}

// PrintResults prints a finished job's results; done is false while the
// job runs, and a failed job is an error naming its reason.
func PrintResults(w io.Writer, r *pb.FetchResultsResponse) (done bool, err error) {
	switch r.GetPhase() {
	case pb.Phase_PHASE_DONE:
		fmt.Fprintf(w, "job %s done\nbaseline: %s\nreport: %s\n", r.GetJobId(), r.GetBaselineJson(), r.GetReportJson())
		return true, nil
	case pb.Phase_PHASE_FAILED:
		return true, fmt.Errorf("job %s failed: %s", r.GetJobId(), r.GetFailureReason())
	}
	return false, nil
}
