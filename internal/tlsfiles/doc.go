// Package tlsfiles loads the mutual-TLS PEM files shared by every role (the
// coordinator's gRPC and raft, the worker's coordinator client and ring):
// one certificate and key per process, one CA for every peer. It owns the
// file triple, its validation and the server, client and both-ends
// configurations built from it; nothing else in whorl reads certificates.
package tlsfiles
