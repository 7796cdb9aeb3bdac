// Package session runs `whorl run`'s experiments (Run: its Settings, the
// flags' preset or job file and overrides, to one job, a sweep of seeds or
// a comparison of training modes): one job in an output
// folder that a rerun resumes (RunJob: in this process or on a local
// cluster), a sweep of seeds (Sweep: each seed's run in OUT/seed-N, one
// cluster for all, then the aggregate report) and the comparison of
// training modes (CompareModes). Its cluster is a raft coordinator group
// and workers in one process on loopback with mutual TLS and throwaway
// identities (Cluster, StartCluster, Certs), kept in the run's folder
// (Session, Open). FollowJob is the one loop that follows a job through
// its statuses to its results, for Session.Wait (pretraining progress by
// job.EpochMean, the coordinator's own rule, shown by Printer) and for
// `whorl submit --wait` and `--seeds` on any cluster (WatchJob,
// SubmitSeeds); StatusLine and PrintStatus print a status for people.
// CheckRun reads a run's folder, its cluster's data dirs included, the way
// a rerun would (`whorl doctor --out`).
//
// It imports coordinator, worker and experiment and is imported by
// cmd/whorl (flags and wiring) and the end-to-end tests, so both run the
// same local cluster.
package session
