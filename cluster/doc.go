// Package cluster is the ring collective of whorl's workers: a bandwidth-optimal
// ring all-reduce of float32 buffers over gRPC.
//
// A worker creates one Service, registers it on its gRPC server (passing
// Service.ServerOptions to grpc.NewServer and serving on
// Service.Listener(lis)) and, for every ring generation the
// coordinator announces, joins the ring with Service.NewRing. The Ring then
// sums buffers in place, one collective at a time: AllReduce, or
// AllReduceSum, which satisfies model.Reducer (synchronised BatchNorm), or
// Start, which sums in the background. A generation may also be joined on
// the Bulk channel (Service.NewChannelRing, optionally in bfloat16): a ring
// with lanes and an order of its own, where the worker's gradient buckets
// travel during backward without delaying the Control ring's small sums.
//
// # Algorithm
//
// Reduce-scatter then all-gather around the ring (2(N-1) steps; every member
// sends 2(N-1)/N of the buffer). The buffer is split into N segments and each
// segment into pieces of at most Config.ChunkBytes; a piece is forwarded as
// soon as it has been received and summed, so sending, receiving and summing
// overlap. Pieces travel on Config.Streams long-lived gRPC streams ("lanes")
// per link, opened once per ring, so a small collective (a few hundred floats
// of BatchNorm statistics) costs 2(N-1) message hops and no stream set-up.
//
// Sums are deterministic: segment c is summed in ring order starting at
// member c, and the all-gather copies the reduced values, so every member ends
// with bit-identical values, the same from run to run for a fixed ring order.
//
// # Wire
//
// Each lane is opened by a gRPC Transfer stream (proto/whorl/ring/v1): the
// opening request names job, generation, sender and lane, and the receiver
// checks them before it accepts. With Config.Transport Direct (the default)
// and a receiver whose gRPC server serves on Service.Listener, the receiver
// answers with a one-time token; the sender then opens a plain TCP
// connection to the same port (mutual TLS when Config.TLS is set), presents
// the token, and the lane's chunks travel on it as frames: the
// TransferRequest header, then the values written straight from the
// caller's buffer (one writev) and read into one pooled buffer. This skips
// gRPC's two user-space copies and its 16 KiB HTTP/2 frames (1.5x the
// bandwidth, DESIGN.md). Otherwise (Transport InStream, or a receiver
// without the Listener) chunks are TransferRequest messages of the stream,
// sent with the "whorlring" gRPC content subtype: its codec hands gRPC the
// memory of the caller's buffer (no copy; gRPC's release of it marks the
// piece sent), pads the header so the values start 4-byte aligned in every
// received HTTP/2 frame, and sums them straight out of gRPC's receive
// buffers. Either way every chunk carries job, generation, sender,
// collective sequence number and training step; the receiver rejects, and
// never sums, anything that does not match the collective it is running,
// and the stream's end is the lane's end. Values travel as little-endian
// float32 (ENCODING_FLOAT32), or as bfloat16 on a ring opened with BFloat16
// (ENCODING_BFLOAT16); a chunk in another encoding than the ring's is
// rejected. All members must use the same ChunkBytes and Streams (a
// mismatch is rejected).
//
// A collective never returns while gRPC may still read its buffer: on
// success it waits for the release of every piece, on failure it closes
// the lane connections first.
//
// # Failure
//
// Every collective has a deadline (Config.Timeout, default 10 s). When a peer
// dies, stalls or the network drops, the collective fails within it with an
// error naming the peer and the step, and the ring is broken: its streams are
// cancelled, which makes the neighbours fail promptly too, so the failure
// travels around the ring. The worker then joins a new generation with
// NewRing and may re-reduce the same buffers (a join that failed may be
// retried with the same generation). With Config.TLS set, lanes use
// mutual TLS and a peer without a certificate signed by a trusted CA is
// refused.
package cluster
