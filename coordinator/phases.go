package coordinator

import (
	"context"

	"github.com/whorl-ml/whorl/job"
)

// Phases runs the parts of a job that are not distributed pretraining. The
// leader's job driver calls it; *experiment.Runner implements it.
// Every method is deterministic from configJSON (the job's job.Config as
// JSON), so a new leader can redo a phase that its predecessor did not
// finish. Implementations must honour ctx cancellation (the leader loses
// leadership or shuts down).
type Phases interface {
	// Prepare loads the data and split for the job and returns the
	// training-image ids to pretrain on, the normaliser and the manifest
	// digest. It is called by the leader before pretraining (and again by a
	// new leader) and must return the same result every time.
	Prepare(ctx context.Context, configJSON []byte) (job.Prepared, error)
	// Baseline trains and evaluates the supervised baseline on the labeled
	// subset and returns its result as JSON (kept in the raft state).
	Baseline(ctx context.Context, configJSON []byte) (resultJSON []byte, err error)
	// FineTune fine-tunes the pretrained checkpoint (model.EncodeCheckpoint
	// bytes, as committed by the workers) and evaluates both models; it
	// returns the final report JSON (and writes report files where the
	// runner is configured to). pretext is the pretraining's per-epoch
	// history for the report.
	FineTune(ctx context.Context, configJSON []byte, pretrained []byte, baselineJSON []byte, pretext []job.EpochStat) (reportJSON []byte, err error)
}

// MemoryEstimator is what Phases may also implement: the peak memory the
// leader's phases of a job are estimated to need, in bytes, and what it is
// made of (for the refusal's message). With Config.JobMemoryLimit, the
// leader refuses at submit a job whose estimate exceeds the limit.
type MemoryEstimator interface {
	EstimateMemory(configJSON []byte) (bytes int64, parts string, err error)
}

// DataChecker is what Phases may also implement: whether a job's data can
// be opened from here (its folder listed, its packed index read, its
// bucket reached with the credentials the leader has). The leader refuses
// at submit a job whose data cannot, with the error naming the location.
type DataChecker interface {
	CheckData(ctx context.Context, configJSON []byte) error
}

// ResultLister is what Phases may also implement: the result files that
// the FineTune call which returned reportJSON (and the earlier phases of
// the same job) wrote on this coordinator, as artifact name (a plain file
// name) to path. The leader stores each as a blob on a quorum and commits
// the list with fine-tuning's result (Job.Artifacts), so that any
// coordinator serves them after the job; without it (or with no files) a
// job has no artifacts. It must list only this job's files, never a stale
// one of an earlier job in the same folder. (A map of plain strings, so
// that experiment.Runner implements it without linking this package.)
type ResultLister interface {
	ResultFiles(configJSON, reportJSON []byte) (map[string]string, error)
}
