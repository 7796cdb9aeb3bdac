package coordinator

import "context"

// Phases runs the parts of a job that are not distributed pretraining. The
// leader's job driver calls it; cmd/whorl wires it to *experiment.Runner.
// Every method is deterministic from configJSON (the job's experiment.Config
// as JSON), so a new leader can redo a phase that its predecessor did not
// finish. Implementations must honour ctx cancellation (the leader loses
// leadership or shuts down).
type Phases interface {
	// Prepare loads the data and split for the job and returns the
	// training-image ids to pretrain on, the normaliser and the manifest
	// digest. It is called by the leader before pretraining (and again by a
	// new leader) and must return the same result every time.
	Prepare(ctx context.Context, configJSON []byte) (Prepared, error)
	// Baseline trains and evaluates the supervised baseline on the labeled
	// subset and returns its result as JSON (kept in the raft state).
	Baseline(ctx context.Context, configJSON []byte) (resultJSON []byte, err error)
	// FineTune fine-tunes the pretrained checkpoint (model.EncodeCheckpoint
	// bytes, as committed by the workers) and evaluates both models; it
	// returns the final report JSON (and writes report files where the
	// runner is configured to). pretext summarises the pretraining epochs
	// for the report.
	FineTune(ctx context.Context, configJSON []byte, pretrained []byte, baselineJSON []byte, pretext []EpochMetric) (reportJSON []byte, err error)
}

// Prepared is what Phases.Prepare returns: the pretraining image ids, the
// per-channel normaliser and the digest of the dataset manifest (workers
// check that theirs matches before training).
type Prepared struct {
	// TrainIDs are the ids of the images pretrained on (in a fixed order;
	// the coordinator permutes them per epoch with the job seed).
	TrainIDs []int
	// Mean and Std are the per-channel (RGB) normaliser of the inputs.
	Mean, Std [3]float32
	// ManifestDigest is the hex SHA-256 of the dataset manifest.
	ManifestDigest string
	// Images serves the original file bytes of image ids for workers that
	// cannot read the dataset themselves (FetchImages). Nil means the
	// coordinator does not serve images.
	Images ImageReader
}

// ImageReader reads the original encoded bytes of one image by id.
type ImageReader interface {
	// ReadImage returns the file name (for its format) and bytes of image id.
	ReadImage(ctx context.Context, id int) (name string, data []byte, err error)
}
