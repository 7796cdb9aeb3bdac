// Package worker is whorl's data plane: one training process of a
// distributed rotation-pretraining job.
//
// A Worker registers with the coordinator (any coordinator address; the
// client follows the raft leader), renews its lease with a heartbeat in its
// own goroutine, and long-polls for its assignment: the job, the ring
// generation with its members in rank order, and for every remaining step of
// the epoch this worker's contiguous part of the global batch together with
// the global batch size.
//
// For each new generation the worker builds the ring (cluster), makes it the
// model's Reducer (synchronised BatchNorm) and first makes every replica
// identical: the members sum a vote of their positions, then the most
// advanced member's weights, BatchNorm state and optimizer state are summed
// with zeros from the others, which copies them exactly. So a joiner gets
// the current weights and a member that applied a step the others aborted is
// not rolled back. Then every step is the job's one pretraining step
// (model/recipe's Pretrainer, which the single-process run drives too) on
// the local part: the rotation batch of the local ids (each image augmented
// from its own seed, so the batches do not depend on the worker count),
// forward and backward with the loss scaled by local/global images, the
// ring all-reduce of the gradient buffer (by
// default in buckets that start during backward on the generation's bulk
// ring, so they never delay the batch-statistics sums on the control ring;
// pretrain.grad_bucket_mib, pretrain.grad_bf16), the same optimizer step
// on every replica, and a checkpoint from rank 0 every K steps
// and after each epoch.
//
// Progress: a step is reported to the coordinator only once a later
// collective (the next step's, or a one-value barrier after the last step of
// an assignment) completed here. Every member contributed to that
// collective, so every member had applied the step: a step the coordinator
// counts as done is in the weights of every survivor, even when the reporter
// dies right after. Every rank reports, with its step time and all-reduce
// wait (the coordinator names stragglers). Reports run in the background,
// overlapping the next step, and are joined before a checkpoint (which the
// coordinator accepts at most one step ahead of the progress).
//
// Faults: any ring error, or a heartbeat revealing a newer generation,
// aborts the step in flight (BatchNorm running statistics are restored to
// their value before it; weights and optimizer state are only touched after
// a successful all-reduce), drops the ring and continues from the current
// weights in the next generation, without restarting the process. A ring is
// joined once per generation: when a ring failed but the generation does not
// change (a stalled link; every lease still held) for three leases, the
// worker leaves and registers again to force a new one. When the
// context ends (SIGTERM) the worker aborts its step, closes its ring, stops
// the heartbeat and deregisters within Config.LeaveTimeout.
//
// Images: a worker reads the job's data itself (Config.Data DataLocal) or
// fetches its steps' image bytes from the coordinator (DataCoordinator),
// streaming them as below with the coordinator as the store.
// Reading itself, it streams a packed dataset (a folder or file://, s3://,
// gs:// URL of shard's packed layout): it numbers the images from the index
// alone (job.OpenCatalogue), and when that numbering's manifest is the
// job's it fetches only each step's images, reads the assignment's next
// Config.ReadAhead steps in the background, decodes them in parallel and
// keeps Config.ImageCache bytes of them; so its memory does not grow with
// the dataset. A class folder, the embedded set, or a packed set of which
// the coordinator left an image out, is loaded whole.
//
// The training loop is written against small interfaces declared here
// (Coordinator, RingFactory, Replica): Run wires the real gRPC coordinator
// client, the cluster ring and the model; the tests use in-memory fakes.
package worker
