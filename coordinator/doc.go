// Package coordinator is whorl's control plane: a raft group (hashicorp/raft
// with raft-boltdb and a file snapshot store) whose replicated state holds the
// job, its phase, worker membership with leases, the ring generation, the
// per-epoch step plan and progress, the latest consistent checkpoint and the
// results, and the results of the last finished jobs (State.History); a
// gRPC server (proto/whorl/coordinator/v1) that workers, `whorl submit` and
// `whorl status` talk to; and the job driver that the leader runs to move a
// job through its phases.
//
// The FSM is a thin adapter (fsm.go) over the plain State type (state.go):
// every replicated change is a small typed Command whose apply method
// changes the State (FSM.Apply decodes the raft entry and calls it), so the
// state machine is tested without raft. Checkpoint blobs never go
// through the raft log: they are stored content-addressed on each
// coordinator's disk and replicated to a quorum before their digest is
// committed (see DESIGN.md); so are a finished job's result files
// (results.go: Job.Artifacts, listed by Phases that implement
// ResultLister).
//
// Node (New, Run) owns raft, the gRPC server, the metrics server, the
// leader-only goroutines (lease timer, job driver) and the blob copies that
// outlive an upload; Run waits for all of them. LocalCluster (StartLocal,
// RememberPorts) runs a whole group in one process on loopback for tests
// and `whorl run`.
//
// The job itself (its Config, the epoch plan, the batch rule) is package
// job's: the coordinator reads it without linking the training engine, and
// the Phases it is given (experiment.Runner in the binary) run the
// non-distributed steps. What callers link is package coordinator/client:
// the leader-following Client and the sentinel errors a coordinator
// answers with, mapped to gRPC codes by one table in both directions;
// every handler here returns its errors through client.Status.
//
// Files: state.go and commands*.go are the replicated state machine;
// fsm.go and raft.go the raft glue; server.go, assign.go, checkpoint.go,
// images.go, status.go and peers.go the gRPC services; leader.go, leases.go,
// driver.go and results.go the leader's duties; local*.go the in-process cluster;
// package blobstore the checkpoint store; doctor.go `whorl doctor`'s check of a data
// dir, whose parsers of bbolt's and raft's formats are package storecheck's.
package coordinator
