package client

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whorl-ml/whorl/cluster"
)

// errorDomain is the google.rpc.ErrorInfo domain of coordinator errors.
const errorDomain = "whorl.coordinator.v1"

// wireErrors maps each sentinel to its gRPC code and ErrorInfo reason, in
// both directions (Status on the server, FromStatus in Client).
var wireErrors = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{ErrNotLeader, codes.Unavailable, "NOT_LEADER"},
	{ErrNoLeader, codes.Unavailable, "NO_LEADER"},
	{ErrShutdown, codes.Unavailable, "SHUTDOWN"},
	{ErrNoQuorum, codes.Unavailable, "NO_QUORUM"},
	{ErrNoJob, codes.NotFound, "NO_JOB"},
	{ErrUnknownWorker, codes.NotFound, "UNKNOWN_WORKER"},
	{ErrBlobNotFound, codes.NotFound, "BLOB_NOT_FOUND"},
	{ErrJobRunning, codes.AlreadyExists, "JOB_RUNNING"},
	{ErrBadJob, codes.InvalidArgument, "BAD_JOB"},
	{ErrBadCheckpoint, codes.InvalidArgument, "BAD_CHECKPOINT"},
	{ErrBadRequest, codes.InvalidArgument, "BAD_REQUEST"},
	{cluster.ErrStaleGeneration, codes.FailedPrecondition, "STALE_GENERATION"},
	{ErrWrongPhase, codes.FailedPrecondition, "WRONG_PHASE"},
	{ErrBadStep, codes.FailedPrecondition, "BAD_STEP"},
	{ErrNoImages, codes.FailedPrecondition, "NO_IMAGES"},
	{ErrReplaced, codes.FailedPrecondition, "WORKER_REPLACED"},
	{ErrTooManyWorkers, codes.ResourceExhausted, "TOO_MANY_WORKERS"},
	{ErrJobTooLarge, codes.ResourceExhausted, "JOB_TOO_LARGE"},
}

// Status is the one function that maps a coordinator's errors to gRPC
// statuses: the sentinel's code plus an ErrorInfo naming it (and, for a
// follower, the leader's id and address). Every coordinator handler
// returns its error through it.
func Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isOurs(err) {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	for _, w := range wireErrors {
		if !errors.Is(err, w.err) {
			continue
		}
		info := &errdetails.ErrorInfo{Reason: w.reason, Domain: errorDomain}
		var nl *NotLeaderError
		if errors.As(err, &nl) {
			info.Metadata = map[string]string{"leader_id": nl.LeaderID, "leader_addr": nl.LeaderAddr}
		}
		st, derr := status.New(w.code, err.Error()).WithDetails(info)
		if derr != nil {
			return status.Error(w.code, err.Error())
		}
		return st.Err()
	}
	return status.Error(codes.Internal, err.Error())
}

// isOurs reports whether err wraps one of the sentinels.
func isOurs(err error) bool {
	for _, w := range wireErrors {
		if errors.Is(err, w.err) {
			return true
		}
	}
	return false
}

// FromStatus turns a gRPC error from a coordinator back into an error that
// wraps the sentinel it was made from (a *NotLeaderError for NOT_LEADER).
func FromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errorDomain {
			continue
		}
		for _, w := range wireErrors {
			if w.reason != info.GetReason() {
				continue
			}
			if w.err == ErrNotLeader || w.err == ErrNoLeader {
				return &NotLeaderError{LeaderID: info.GetMetadata()["leader_id"], LeaderAddr: info.GetMetadata()["leader_addr"]}
			}
			return &wireError{msg: st.Message(), err: w.err}
		}
	}
	switch st.Code() {
	case codes.Canceled:
		return &wireError{msg: st.Message(), err: context.Canceled}
	case codes.DeadlineExceeded:
		return &wireError{msg: st.Message(), err: context.DeadlineExceeded}
	}
	return err
}

// wireError is an error received from a coordinator: the server's message,
// unwrapping to the sentinel it was made from.
type wireError struct {
	msg string
	err error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.err }
