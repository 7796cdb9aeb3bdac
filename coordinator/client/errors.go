package client

import (
	"errors"
	"fmt"
)

// Errors a coordinator answers with, wrapped with the operation and tested
// with errors.Is. They exist once, here: the coordinator returns them,
// Status (wire.go) maps each to one gRPC code and reason, and Client maps
// the answer back, so callers on either side of the wire test the same
// values. A stale ring generation is cluster.ErrStaleGeneration (the ring's
// own error), mapped the same way.
var (
	// ErrNotLeader: the request needs the raft leader and this node is not
	// it (the gRPC status carries the leader's address).
	ErrNotLeader = errors.New("not the raft leader")
	// ErrNoLeader: no leader is known (election in progress or no quorum).
	ErrNoLeader = errors.New("no raft leader known")
	// ErrNoJob: no job has been submitted, or the job id is unknown.
	ErrNoJob = errors.New("no such job")
	// ErrJobRunning: a job is submitted while another is not finished.
	ErrJobRunning = errors.New("another job is running")
	// ErrBadJob: the submitted job configuration is invalid.
	ErrBadJob = errors.New("invalid job configuration")
	// ErrBadRequest: a request misses a required field.
	ErrBadRequest = errors.New("invalid request")
	// ErrUnknownWorker: the worker is not registered (its lease expired):
	// it must register again.
	ErrUnknownWorker = errors.New("worker not registered")
	// ErrWrongPhase: the request does not fit the job's phase.
	ErrWrongPhase = errors.New("wrong job phase")
	// ErrBadStep: a reported step or checkpoint position does not fit the
	// job's progress.
	ErrBadStep = errors.New("step out of order")
	// ErrBadCheckpoint: an uploaded checkpoint is malformed (size or
	// digest mismatch, missing header).
	ErrBadCheckpoint = errors.New("malformed checkpoint upload")
	// ErrBlobNotFound: no coordinator reachable holds the blob.
	ErrBlobNotFound = errors.New("blob not found")
	// ErrNoQuorum: a checkpoint blob could not be replicated to a quorum.
	ErrNoQuorum = errors.New("blob not replicated to a quorum")
	// ErrNoImages: this coordinator does not serve image bytes.
	ErrNoImages = errors.New("coordinator does not serve images")
	// ErrShutdown: the coordinator is shutting down.
	ErrShutdown = errors.New("coordinator shutting down")
	// ErrTooManyWorkers: the coordinator's MaxWorkers are registered; a
	// new worker id is refused until one leaves.
	ErrTooManyWorkers = errors.New("too many workers")
	// ErrJobTooLarge: the job's estimated peak memory on the leader (the
	// baseline, fine-tuning and evaluation it runs) exceeds the
	// coordinator's job memory limit; the message names both.
	ErrJobTooLarge = errors.New("job too large for the coordinator")
	// ErrReplaced: another process registered this worker id since the
	// caller did (a newer incarnation fences the older); the message names
	// the newer process's ring address. The caller must stop.
	ErrReplaced = errors.New("worker replaced by another process with its id")
	// ErrConfig: an invalid client Config (the message names the field
	// and the bound). It never crosses the wire.
	ErrConfig = errors.New("invalid coordinator client configuration")
)

// NotLeaderError is returned by a follower for a leader-only request; it
// wraps ErrNotLeader (or ErrNoLeader when LeaderAddr is unknown).
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

// Error names the leader when one is known.
func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return ErrNoLeader.Error()
	}
	return fmt.Sprintf("%s; leader is %s at %s", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) or ErrNoLeader true.
func (e *NotLeaderError) Unwrap() error {
	if e.LeaderAddr == "" {
		return ErrNoLeader
	}
	return ErrNotLeader
}
