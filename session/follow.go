package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Follow says how FollowJob polls a job and whom it tells what it sees.
type Follow struct {
	// Every is the poll interval.
	Every time.Duration
	// Status, when set, hears every status that shows the job; an error
	// stops following with that error.
	Status func(*pb.JobStatusResponse) error
	// Waiting, when set, hears that the job's state is unknown for now:
	// no raft leader is known, or no coordinator answered within the
	// client's retry time. FollowJob keeps waiting.
	Waiting func(error)
}

// FollowJob is the one loop that follows a job (whorl run's Session.Wait,
// `whorl submit --wait`, `whorl submit --seeds`): it polls job id's status
// until the job is done or failed and returns its results. A quorum down,
// an election or a restart is waited out (the job's state is then unknown,
// not ended), and a status that does not show the job yet (a restarted
// group replaying its log) is skipped; ctx, an answer of the coordinator
// that is an error, or f.Status's error ends it early.
func FollowJob(ctx context.Context, cl *client.Client, id string, f Follow) (*pb.FetchResultsResponse, error) {
	for first := true; ; first = false {
		if !first {
			if err := sleepCtx(ctx, f.Every); err != nil {
				return nil, err
			}
		}
		st, err := cl.JobStatus(ctx)
		if waitOut(ctx, err, f) {
			continue
		}
		if err != nil {
			return nil, cmpErr(ctx, err)
		}
		if st.GetJobId() != id {
			continue
		}
		if f.Status != nil {
			if err := f.Status(st); err != nil {
				return nil, err
			}
		}
		if p := st.GetPhase(); p != pb.Phase_PHASE_DONE && p != pb.Phase_PHASE_FAILED {
			continue
		}
		r, err := cl.FetchResults(ctx, id)
		if waitOut(ctx, err, f) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fetch the results of %s: %w", id, cmpErr(ctx, err))
		}
		if p := r.GetPhase(); p == pb.Phase_PHASE_DONE || p == pb.Phase_PHASE_FAILED {
			return r, nil
		}
	}
}

// waitOut reports whether err is one to wait out while ctx lives (no
// leader known, or the client's retries gave up), telling f.Waiting.
func waitOut(ctx context.Context, err error, f Follow) bool {
	if err == nil || ctx.Err() != nil ||
		!errors.Is(err, client.ErrNoLeader) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if f.Waiting != nil {
		f.Waiting(err)
	}
	return true
}

// cmpErr is ctx's error once ctx is done (the call failed because of it),
// else err.
func cmpErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// WatchJob follows job id (FollowJob, polling every every), printing each
// new status line to w and then the results (PrintResults), and returns
// them; a failed job is an error.
func WatchJob(ctx context.Context, w io.Writer, cl *client.Client, id string, every time.Duration) (*pb.FetchResultsResponse, error) {
	last := ""
	say := func(line string) {
		if line != last {
			fmt.Fprintln(w, line)
			last = line
		}
	}
	r, err := FollowJob(ctx, cl, id, Follow{Every: every,
		Status:  func(st *pb.JobStatusResponse) error { say(StatusLine(st)); return nil },
		Waiting: func(err error) { say(waitingLine(err)) }})
	if err != nil {
		return nil, err
	}
	_, err = PrintResults(w, r)
	return r, err
}

// waitingLine says why the job's state is unknown for now.
func waitingLine(err error) string {
	if errors.Is(err, client.ErrNoLeader) {
		return "no raft leader known; waiting: " + err.Error()
	}
	return "no coordinator answered; waiting: " + err.Error()
}
