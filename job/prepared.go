package job

import "context"

// Prepared is a job's data as prepared once by the coordinator's leader
// (Phases.Prepare) and handed to every worker: the pretraining image ids,
// the per-channel normaliser of the training images and the digest of the
// dataset manifest (workers check that theirs matches before training).
type Prepared struct {
	// TrainIDs are the ids of the images pretrained on, in a fixed order;
	// PlanEpoch permutes them per epoch with the job seed.
	TrainIDs []int
	// LabeledIDs are the labeled training images (the validation images
	// held out) and LabeledClasses their classes, in a fixed order: the
	// joint mode's labeled batches draw from them (LabeledBatch).
	LabeledIDs, LabeledClasses []int
	// Classes is the number of classes of the data.
	Classes int
	// Mean and Std are the per-channel (RGB) normaliser of the inputs.
	Mean, Std [3]float32
	// ManifestDigest is the hex SHA-256 of the dataset manifest.
	ManifestDigest string
	// Images serves the original file bytes of image ids, for workers that
	// cannot read the dataset themselves (FetchImages). Nil means the
	// images are not served.
	Images ImageReader
}

// ImageReader reads the original encoded bytes of one image by id.
type ImageReader interface {
	// ReadImage returns the file name (for its format) and bytes of image id.
	ReadImage(ctx context.Context, id int) (name string, data []byte, err error)
}
