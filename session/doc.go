// Package session is `whorl run`'s side of a cluster: a raft coordinator
// group and workers in one process on loopback with mutual TLS and
// throwaway identities (Cluster, StartCluster, Certs), a run's cluster kept
// in its output folder so a rerun resumes (Session, Open, Run), following a
// job through its statuses to its report (pretraining progress by
// job.EpochMean, the coordinator's own rule), and the progress printer.
//
// It imports coordinator, worker and experiment and is imported by
// cmd/whorl (flags and wiring) and the end-to-end tests, so both run the
// same local cluster.
package session
