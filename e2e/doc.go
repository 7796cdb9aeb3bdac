// Package e2e holds whorl's multi-process and fault tests: real coordinators
// (raft over loopback TCP) and real workers (gRPC ring servers) in one test
// process, and the whorl binary itself in separate processes for kill -9.
// The network-namespace multi-host suite lives in e2e/netns.
package e2e
