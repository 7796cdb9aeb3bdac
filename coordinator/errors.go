package coordinator

import "errors"

// Errors of a coordinator node itself (its configuration, its disk); the
// errors a coordinator answers with over gRPC are declared once, in
// package client.
var (
	// ErrConfig: an invalid Config or local-cluster option (the message
	// names the field and the bound).
	ErrConfig = errors.New("invalid coordinator configuration")
	// ErrDamaged: this node's data dir holds a damaged raft log or
	// snapshot (the message names the file and the recovery).
	ErrDamaged = errors.New("damaged coordinator state")
	// ErrBadState: a state decoded from a raft snapshot breaks an
	// invariant every applied command keeps (the message names the
	// field); the snapshot is not used.
	ErrBadState = errors.New("invalid replicated state")
)
