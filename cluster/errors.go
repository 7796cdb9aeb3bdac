package cluster

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors returned by this package, wrapped with the operation, the peer and
// the step; test them with errors.Is.
var (
	// ErrClosed: the ring (or service) was closed by its owner.
	ErrClosed = errors.New("cluster: ring closed")
	// ErrTimeout: a collective or a join did not finish within Config.Timeout.
	ErrTimeout = errors.New("cluster: deadline exceeded")
	// ErrPeer: the stream to or from a peer failed (the peer died, left,
	// or broke the ring after its own failure).
	ErrPeer = errors.New("cluster: peer failed")
	// ErrRejected: a message from another job, generation, sender or
	// collective, or one that does not fit the collective, was rejected.
	ErrRejected = errors.New("cluster: message rejected")
	// ErrNonFinite: a chunk held a NaN or an infinity (a diverged or
	// hostile sender); the lane fails naming the sender's rank.
	ErrNonFinite = errors.New("cluster: non-finite value")
	// ErrStaleGeneration: a ring generation older than (or equal to) one
	// this service already joined.
	ErrStaleGeneration = errors.New("cluster: stale ring generation")
	// ErrBroken: an earlier collective of this ring failed; join a new
	// generation.
	ErrBroken = errors.New("cluster: ring broken by an earlier failure")
	// ErrUnauthenticated: a peer without a verified client certificate
	// tried to open a lane while mutual TLS is configured.
	ErrUnauthenticated = errors.New("cluster: peer not authenticated")
	// ErrTooManyLanes: MaxOpenLanes lane streams are already open on this
	// service; the new one is refused (the sender's ring fails and
	// re-forms, as after any refused lane).
	ErrTooManyLanes = errors.New("cluster: too many open lanes")
	// ErrConfig: an invalid Config (the message names the field and bound).
	ErrConfig = errors.New("cluster: invalid configuration")
)

// toStatus maps an error of the Transfer handler to a gRPC status.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrRejected), errors.Is(err, ErrNonFinite):
		code = codes.InvalidArgument
	case errors.Is(err, ErrStaleGeneration):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrUnauthenticated):
		code = codes.Unauthenticated
	case errors.Is(err, ErrTimeout):
		code = codes.DeadlineExceeded
	case errors.Is(err, ErrTooManyLanes):
		code = codes.ResourceExhausted
	case errors.Is(err, ErrClosed), errors.Is(err, ErrBroken), errors.Is(err, ErrPeer):
		code = codes.Aborted
	case errors.Is(err, errLaneTakenOver):
		code = codes.Aborted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

// peerErr wraps err (and the sentinel kind) with what the ring was doing
// and with whom.
func peerErr(kind error, what string, peer string, rank int, err error) error {
	if err == nil {
		return fmt.Errorf("%s peer %s (rank %d): %w", what, peer, rank, kind)
	}
	if errors.Is(err, kind) {
		return fmt.Errorf("%s peer %s (rank %d): %w", what, peer, rank, err)
	}
	return fmt.Errorf("%s peer %s (rank %d): %w: %w", what, peer, rank, kind, err)
}
