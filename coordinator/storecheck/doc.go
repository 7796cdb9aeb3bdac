// Package storecheck reads a coordinator's files in its dependencies'
// on-disk formats, without trusting them: the raft log in bbolt's data
// format (Bolt, before bbolt maps the file at every start and for `whorl
// doctor`) and raft's file snapshots (Snapshot). It knows exactly the
// formats of the versions whorl links (bbolt data format 2, hashicorp/raft
// v1 snapshots 0..1) and refuses any other by name (ErrUnknownFormat)
// rather than guess; it never writes.
//
// The coordinator's own files (checkpoint blobs named by their digest) are
// the coordinator's to check.
package storecheck

import "errors"

// Sentinel errors of the package.
var (
	// ErrDamaged reports a file that is truncated, corrupt or inconsistent.
	ErrDamaged = errors.New("damaged")
	// ErrUnknownFormat reports a file of a format version this package
	// does not read.
	ErrUnknownFormat = errors.New("unknown on-disk format")
)
