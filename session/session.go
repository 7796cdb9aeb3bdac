package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Session is a local cluster started for a run in an output folder (its
// state in OUT/cluster, its log in OUT/cluster.log) and a client of it.
type Session struct {
	lc        *Cluster
	cl        *client.Client
	logFile   *os.File
	restarted bool // the cluster's folder held a previous run's cluster
}

// Open starts the local cluster of the run in out, whose coordinators run
// the non-distributed phases with phases.
func Open(ctx context.Context, out string, cc ClusterConfig, phases coordinator.Phases) (*Session, error) {
	s := &Session{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if lf, err := os.OpenFile(filepath.Join(out, "cluster.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		s.logFile = lf
		log = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	dir := filepath.Join(out, "cluster")
	_, statErr := os.Stat(filepath.Join(dir, "ports.json"))
	s.restarted = statErr == nil
	lc, err := StartCluster(ctx, dir, cc, phases, log)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.lc = lc
	if s.cl, err = lc.Client(log); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the client, then the cluster, then closes the log.
func (s *Session) Close() {
	if s.cl != nil {
		s.cl.Close()
	}
	if s.lc != nil {
		s.lc.Stop()
	}
	if s.logFile != nil {
		s.logFile.Close()
	}
}

// Wait follows job id until it is done (FollowJob), passing pretraining
// progress to progress, and returns its report. The coordinator's report
// that its disk refuses the job's state stops it (storeError).
func (s *Session) Wait(ctx context.Context, id string, progress func(experiment.Event)) (experiment.Report, error) {
	tr := newPretrainTracker(progress)
	res, err := FollowJob(ctx, s.cl, id, Follow{Every: 250 * time.Millisecond, Status: func(st *pb.JobStatusResponse) error {
		if err := storeError(st); err != nil {
			return err
		}
		switch st.GetPhase() {
		case pb.Phase_PHASE_PRETRAINING:
			tr.update(st)
		case pb.Phase_PHASE_BASELINE, pb.Phase_PHASE_FINETUNING:
			tr.finish(st)
		}
		return nil
	}})
	if err != nil {
		return experiment.Report{}, err
	}
	if res.GetPhase() != pb.Phase_PHASE_DONE {
		return experiment.Report{}, fmt.Errorf("job %s %s: %s", id, res.GetPhase().Label(), res.GetFailureReason())
	}
	var rep experiment.Report
	if err := json.Unmarshal(res.GetReportJson(), &rep); err != nil {
		return experiment.Report{}, fmt.Errorf("decode the report of %s: %w", id, err)
	}
	return rep, nil
}

// runOnCluster submits job c (or follows the one a previous run left in
// out) to the local cluster of the run in out, whose coordinators run the
// other phases with r, and waits for its report; w hears of the submission.
func runOnCluster(ctx context.Context, w io.Writer, out string, cc ClusterConfig, c job.Config, r *experiment.Runner, progress func(experiment.Event)) (experiment.Report, error) {
	s, err := Open(ctx, out, cc, r)
	if err != nil {
		return experiment.Report{}, err
	}
	defer s.Close()
	id, err := s.SubmitOrResume(ctx, w, c, AnyJob)
	if err != nil {
		return experiment.Report{}, err
	}
	return s.Wait(ctx, id, progress)
}

// AnyJob is SubmitOrResume's want for whichever job the cluster holds.
const AnyJob = "*"

// SubmitOrResume follows the job already in a restarted cluster's state (a
// rerun with the same output folder, whose configuration the caller
// checked) when it is want (AnyJob: whichever it holds; "": none, submit),
// else submits c. Right after a restart the replicated state may not yet
// show the old job; its submission is then refused as ErrJobRunning and
// retried.
func (s *Session) SubmitOrResume(ctx context.Context, w io.Writer, c job.Config, want string) (string, error) {
	if want == AnyJob {
		return submitOrResume(ctx, w, s.cl, c, s.restarted, "")
	}
	return submitOrResume(ctx, w, s.cl, c, s.restarted && want != "", want)
}

func submitOrResume(ctx context.Context, w io.Writer, cl *client.Client, c job.Config, resuming bool, want string) (string, error) {
	deadline, told := time.Now().Add(30*time.Second), false
	for attempt := 0; ; attempt++ {
		st, err := cl.JobStatus(ctx)
		if resuming && (err != nil || st.GetJobId() == "") && time.Now().Before(deadline) {
			// A restarted raft group shows its job once the leader has
			// applied its log; wait for it rather than submit again.
			if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
				return "", err
			}
			continue
		}
		ours := resuming && st.GetJobId() != "" && (want == "" || st.GetJobId() == want)
		if err == nil && ours && st.GetPhase() != pb.Phase_PHASE_FAILED {
			fmt.Fprintf(w, "resuming job %s (phase %s, epoch %d/%d, step %d)\n", st.GetJobId(), st.GetPhase().Label(),
				min(st.GetEpoch()+1, st.GetTotalEpochs()), st.GetTotalEpochs(), st.GetNextStep())
			return st.GetJobId(), nil
		}
		if err == nil && ours && st.GetPhase() == pb.Phase_PHASE_FAILED && !told {
			told = true
			fmt.Fprintf(w, "job %s failed: %s\nstarting the job again from the beginning\n", st.GetJobId(), st.GetFailureReason())
		}
		id, err := cl.SubmitJob(ctx, c.JSON())
		if err == nil {
			fmt.Fprintf(w, "submitted job %s\n", id)
			return id, nil
		}
		if !errors.Is(err, client.ErrJobRunning) || attempt >= 40 {
			return "", fmt.Errorf("submit the job: %w", err)
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// storeError is the coordinator's report that its disk refuses the job's
// state, as an error saying what is kept and how to go on: whorl run stops
// instead of waiting on a job that cannot move past its next checkpoint.
func storeError(st *pb.JobStatusResponse) error {
	e := st.GetStoreError()
	if e == "" {
		return nil
	}
	at := "the start of pretraining"
	if ck := st.GetLatestCheckpoint(); ck != nil {
		at = fmt.Sprintf("the checkpoint of epoch %d, step %d", ck.GetEpoch()+1, ck.GetStep())
	}
	return fmt.Errorf("the coordinator cannot store the job's checkpoints: %s; nothing committed is lost: free space there and rerun the same command to resume from %s", e, at)
}
