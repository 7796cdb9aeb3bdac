// Package tlsfiles loads the mutual-TLS PEM files shared by every role (the
// coordinator's gRPC and raft, the worker's coordinator client and ring):
// one certificate and key per process, whose one URI SAN is its SPIFFE ID
// (internal/identity), and one CA for every peer. It owns the file set, its
// validation, the server, client and peer configurations built from it
// (SPIFFE verification by go-spiffe: the chain against the CA and the
// identity, not host names), their reloading when the files are rotated on
// disk, and the certificate authority that `whorl certs` (Issue: a CA and every
// identity asked for, as files or a folder per identity) and the tests use
// to issue identities; nothing else in whorl reads or makes certificates.
package tlsfiles
