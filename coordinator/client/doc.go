// Package client is what workers, `whorl submit` and `whorl status` link to
// talk to a coordinator group: the leader-following Client (Config,
// DefaultConfig, Validate, New) and the coordinator's wire contract, the
// sentinel errors it answers with (errors.go) and the one table that maps
// each to a gRPC code and ErrorInfo reason in both directions (wire.go:
// Status on the server, FromStatus here). It imports no raft and no job
// code, so a caller does not link the control plane.
//
// Files: client.go the configuration and unary calls; retry.go leader
// following, attempt bounds and failover; stream.go the checkpoint and
// image streams; conns.go the connection cache and dial options shared
// with the coordinator's peer calls; health.go the grpc.health.v1 check
// of a coordinator or worker (`whorl health`).
package client
