package coordinator

import (
	"errors"
)

// Errors of the coordinator; they are wrapped with the operation and tested
// with errors.Is. statusError (grpcerr.go) maps each to one gRPC code, and
// Client maps the codes back, so callers across the wire test the same
// values.
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
	// ErrUnknownWorker: the worker is not registered (its lease expired):
	// it must register again.
	ErrUnknownWorker = errors.New("worker not registered")
	// ErrStaleGeneration: the request names a ring generation that is no
	// longer current.
	ErrStaleGeneration = errors.New("stale ring generation")
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
	// ErrConfig: an invalid Config (the message names the field).
	ErrConfig = errors.New("invalid coordinator configuration")
	// ErrShutdown: the node is shutting down.
	ErrShutdown = errors.New("coordinator shutting down")
)
