// Package identity names whorl's processes and decides what each may call.
//
// Every certificate carries one URI SAN, a SPIFFE ID
// spiffe://<trust-domain>/<role>/<name>, where role is coordinator, worker or
// client and name is the coordinator's raft id, the worker's id or a
// person's or tool's name. The package owns that naming (ID, Parse,
// FromCert), the handshake-time check that a peer is a member of the trust
// domain with one of the expected roles (Authorizer, used by
// internal/tlsfiles), and the per-call authorization of a gRPC server
// (Policy: a method -> roles table that each server declares, with the
// worker-id check and the denial counter hook). Plaintext connections carry
// no identity: a Policy lets them through, because a process without TLS is
// either on loopback or was started with --insecure (see DESIGN.md, "Trust").
package identity
