// Package blobstore is a coordinator's checkpoint storage: content-addressed
// blobs in a directory, named by their SHA-256, published only once written,
// synced and verified, verified again before use (a damaged blob is moved
// aside as evidence and reported as not found, so a peer's copy replaces
// it), and pruned to what the replicated state still names. It knows no
// raft and no job; the coordinator's servers and replication use it.
package blobstore
