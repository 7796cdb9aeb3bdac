package worker

import (
	"context"
	"errors"
	"time"

	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// Errors returned (wrapped) by this package; test with errors.Is. A
// Coordinator answers with the coordinator's own sentinels
// (client.ErrUnknownWorker: register again), and work aborted because the
// ring generation moved on wraps cluster.ErrStaleGeneration, as the ring's
// own errors do.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("invalid worker configuration")
	// ErrManifest marks a local dataset whose manifest digest differs from
	// the job's.
	ErrManifest = errors.New("dataset manifest mismatch")
)

// Coordinator is what the training loop needs from the control plane. It is
// implemented over gRPC by coordClient (client.Client follows the raft
// leader) and by an in-memory fake in the tests.
type Coordinator interface {
	// Register announces the worker and the address its ring service
	// listens on; it is idempotent for the same id.
	Register(ctx context.Context, id, ringAddr string) (Registration, error)
	// Heartbeat renews the worker's lease and returns the newest ring
	// generation the coordinator knows (0 when there is none). It returns
	// client.ErrUnknownWorker when the lease was lost.
	Heartbeat(ctx context.Context, hb HeartbeatInfo) (generation uint64, err error)
	// GetAssignment waits (bounded by the coordinator's long-poll timeout)
	// until the generation, epoch or phase differ from known and returns
	// the worker's current assignment; on timeout it returns the current
	// one, which may equal known.
	GetAssignment(ctx context.Context, id string, known Known) (Assignment, error)
	// ReportProgress reports that this worker completed a step (the step's
	// all-reduce completed here and its optimizer step was applied) and
	// returns the newest generation. A stale generation is not an error
	// the loop acts on: it learns of the new one from the result.
	ReportProgress(ctx context.Context, p Progress) (generation uint64, err error)
	// CommitCheckpoint uploads a checkpoint and returns its digest once the
	// coordinator committed it.
	CommitCheckpoint(ctx context.Context, meta CheckpointMeta, data []byte) (digest string, err error)
	// FetchCheckpoint returns the bytes of the committed checkpoint digest.
	FetchCheckpoint(ctx context.Context, digest string) ([]byte, error)
	// Leave deregisters the worker (graceful shutdown).
	Leave(ctx context.Context, id string) error
}

// Collective is the part of a ring the model needs: an in-place sum of buf
// across all ring members, identical on every member.
type Collective interface {
	AllReduceSum(ctx context.Context, buf []float32) error
}

// Waiter is an all-reduce started in the background.
type Waiter interface {
	// Wait returns when the sum is in place, with its error.
	Wait() error
}

// GradSink is told, while ComputeGrads runs backward, that Grads()[lo:hi]
// is final for the step (model.GradObserver): ranges come once each, in
// strictly decreasing offsets, in the same order on every member.
type GradSink interface {
	GradsReady(lo, hi int)
}

// GradReduce is how a job sums its gradients over the ring.
type GradReduce struct {
	// BucketElems is the bucket size in values: buckets start on the bulk
	// channel during backward. 0: one all-reduce after backward.
	BucketElems int
	// BF16 sends the buckets as bfloat16.
	BF16 bool
}

// Ring is one generation of the all-reduce ring, as built by a RingFactory.
type Ring interface {
	Collective
	// Start begins summing buf across the members in the background and
	// returns at once; buf must not be touched until Wait returns. With a
	// bulk channel (RingFactory.NewRing) it does not delay the following
	// AllReduceSum calls; without one it runs before them.
	Start(ctx context.Context, buf []float32) Waiter
	// SetStep stamps the following collectives with a training step (for
	// the ring's error messages and its checks).
	SetStep(step uint64)
	// DirectLanes is the number of lanes to the next member that carry
	// chunks on direct TCP connections (0 when all fell back to the gRPC
	// stream, or for a ring without such lanes); logged when a ring forms.
	DirectLanes() int
	// Close releases the ring's connections; in-flight calls fail. An idle
	// ring ends gracefully: the next member receives everything sent
	// before, which may take up to the ring timeout when it does not answer.
	Close() error
	// Abort releases the ring's connections at once, without the graceful
	// end: for a generation that failed or was superseded, whose next
	// member may be the very peer that vanished.
	Abort()
}

// RingFactory builds the ring of one generation: members are the ring
// addresses in rank order, ids the members' worker ids (with mutual TLS a
// lane from rank r must hold worker/<ids[r]>'s identity) and rank is this
// worker's index in members. With
// gr.BucketElems > 0 the ring also joins a bulk channel for Start (in
// bfloat16 with gr.BF16), so gradient buckets never queue in front of
// batch-statistics sums; every member of a generation passes the same gr.
type RingFactory interface {
	NewRing(ctx context.Context, generation uint64, members, ids []string, rank int, gr GradReduce) (Ring, error)
}

// Replica is one model replica with its optimizer: what the training loop
// drives. Params and State are the replica's own flat buffers, which the
// loop broadcasts in place; Grads is the buffer it all-reduces in place.
type Replica interface {
	Params() []float32
	Grads() []float32
	// State is the non-trainable model state (BatchNorm running statistics).
	State() []float32
	// OptState returns a copy of the optimizer's state (momentum buffers),
	// of the same length whether or not a step was taken; SetOptState
	// restores one.
	OptState() []float32
	SetOptState(s []float32) error
	// ComputeGrads runs forward and backward on the local part of one global
	// step (image ids, the step's place in the job for augmentation seeds),
	// scaling the loss by scale = local/global so that summing Grads over
	// the ring gives the gradient of the global mean loss. Batch-statistics
	// layers synchronise through c (nil: this replica alone); sink, if not
	// nil, hears of every gradient range as backward finishes it. It
	// returns the local part's statistic (its images, mean loss and
	// accuracy), which the trainer all-reduces into the global step's.
	ComputeGrads(ctx context.Context, c Collective, sink GradSink, w StepWork, epoch int, scale float32) (job.StepStat, error)
	// GradReduce is how the job sums the gradient.
	GradReduce() GradReduce
	// Apply performs the optimizer step of step (0-based) of epoch, an
	// epoch having steps steps (for the learning-rate schedule), with the
	// all-reduced Grads.
	Apply(epoch, step, steps int) error
	// Checkpoint encodes the replica (weights, state, optimizer state) and
	// its position.
	Checkpoint(pos job.Position) ([]byte, error)
	// Restore loads a checkpoint written by Checkpoint and returns its
	// position.
	Restore(data []byte) (job.Position, error)
}

// ReplicaFactory builds the replica of a job from its configuration; the
// replica starts from the job's seeded initial weights.
type ReplicaFactory interface {
	NewReplica(ctx context.Context, a Assignment) (Replica, error)
}

// Registration is the coordinator's answer to Register.
type Registration struct {
	// Heartbeat is the interval the coordinator asks for (0: unspecified).
	Heartbeat time.Duration
	// Lease is how long the coordinator keeps the worker without heartbeat.
	Lease time.Duration
	// Generation is the current ring generation.
	Generation uint64
}

// Known is what a worker already has, for GetAssignment's long poll.
type Known struct {
	Generation uint64
	Epoch      int
	Phase      pb.Phase
}

// Assignment is this worker's work for one ring generation.
type Assignment struct {
	JobID      string
	ConfigJSON []byte
	Phase      pb.Phase
	Generation uint64
	// Members are the ring addresses in rank order, MemberIDs their worker
	// ids; Rank is this worker's.
	Members   []string
	MemberIDs []string
	Rank      int
	// Epoch (of TotalEpochs) and the steps of it that remain, from
	// StartStep of TotalSteps.
	Epoch       int
	TotalEpochs int
	StartStep   int
	TotalSteps  int
	Steps       []StepWork
	// Mean and Std are the per-channel input normaliser.
	Mean, Std [3]float32
	// ManifestDigest is the hex SHA-256 of the dataset manifest.
	ManifestDigest string
	// Resume says that no member has current weights: every member starts
	// from the checkpoint RestoreDigest (or, when it is "", from the job's
	// seeded initial weights) instead of from in-memory weights.
	Resume        bool
	RestoreDigest string
	// CheckpointEvery is the checkpoint interval K in steps (0: only at the
	// end of each epoch).
	CheckpointEvery int
	// Classes is the number of classes of the data (the joint mode's class
	// head).
	Classes int
}

// StepWork is this worker's part of one global step.
type StepWork struct {
	// Step is the index of the step in its epoch.
	Step int
	// IDs are the image ids of this worker's part.
	IDs []int
	// Global is the number of images of the whole global step.
	Global int
	// LabeledIDs and LabeledClasses are this worker's part of the step's
	// labeled images in the joint mode; LabeledGlobal is the step's number
	// of them.
	LabeledIDs, LabeledClasses []int
	LabeledGlobal              int
}

// Progress reports one completed step with the rank's timings.
type Progress struct {
	WorkerID   string
	JobID      string
	Generation uint64
	Rank       int
	Epoch      int
	Step       int
	// Stat is the global step's statistic, the same on every rank (the
	// parts' all-reduced: recipe.Weighted), measured before the update:
	// Images is the step's images, Accuracy the fraction of its rotated
	// images predicted right (0 for replicas that do not classify). A step
	// already in the weights when reported again has a zero Stat.
	Stat job.StepStat
	// Part is the number of images this rank trained on in the step.
	Part int
	// StepTime is the wall time of the whole step; ReduceWait the part
	// spent in the gradient all-reduce (waiting for the slowest rank).
	StepTime   time.Duration
	ReduceWait time.Duration
}

// HeartbeatInfo is what a heartbeat carries.
type HeartbeatInfo struct {
	WorkerID   string
	Generation uint64
	// Epoch and Step are the next step this worker will train.
	Epoch, Step int
	// StepTime and ReduceWait are the last step's timings.
	StepTime   time.Duration
	ReduceWait time.Duration
}

// CheckpointMeta describes a checkpoint upload.
type CheckpointMeta struct {
	WorkerID   string
	JobID      string
	Generation uint64
	Position   job.Position
	// LastStep is the report of the step the weights applied last (the one
	// before Position), sent before that report itself; nil for none.
	LastStep *Progress
}
