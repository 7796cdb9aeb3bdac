package job

// Checkpoint metadata keys: every pretraining checkpoint (the workers', the
// single-process loop's) carries the position and the job it belongs to, so
// any role can resume it or refuse it.
const (
	MetaEpoch        = "whorl.epoch"         // epochs completed before Step (0-based epoch in progress)
	MetaStep         = "whorl.step"          // steps of that epoch completed
	MetaConfigDigest = "whorl.config_sha256" // Digest of the job config the weights belong to
	MetaHistory      = "whorl.history"       // JSON []EpochStat of the finished epochs
	MetaPartial      = "whorl.partial_epoch" // JSON []StepStat of the epoch in progress (its first MetaStep steps)
)

// Data metadata keys of a supervised checkpoint (baseline, fine-tuned), which
// whorl predict reads: MetaNormMean and MetaNormStd hold the input normaliser
// used in training, each a JSON array of 3 numbers (per RGB channel, for
// pixel values scaled to [0, 1]); MetaClassNames is a JSON array of the class
// names, in label order. The engine's own keys (format, network config,
// optimiser) are package model's.
const (
	MetaNormMean   = "whorl.norm_mean"
	MetaNormStd    = "whorl.norm_std"
	MetaClassNames = "whorl.class_names"
)

// EpochStat is one epoch of training: mean loss and accuracy on the training
// batches (augmented), and validation accuracy where measured. Epoch counts
// from 1.
type EpochStat struct {
	Epoch              int     `json:"epoch"`
	Loss               float64 `json:"loss"`
	Accuracy           float64 `json:"accuracy"`
	ValidationAccuracy float64 `json:"validation_accuracy,omitempty"`
	// ClassLoss and ClassAccuracy are the joint mode's labeled images'
	// cross-entropy and accuracy on the class head (zero otherwise).
	ClassLoss     float64 `json:"class_loss,omitempty"`
	ClassAccuracy float64 `json:"class_accuracy,omitempty"`
	// Seconds is the time the epoch's steps took, summed: each step once,
	// in whichever process or ring generation it completed, so a run
	// interrupted and resumed counts the steps done before too (0: not
	// measured).
	Seconds float64 `json:"seconds,omitempty"`
}

// StepStat is one global step's mean loss and accuracy over its Images
// images (at four rotations each), and the time it took.
type StepStat struct {
	Images   int     `json:"images"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
	// ClassLoss and ClassAccuracy are the joint mode's labeled images'
	// (the step's mean; every step has the same number of them).
	ClassLoss     float64 `json:"class_loss,omitempty"`
	ClassAccuracy float64 `json:"class_accuracy,omitempty"`
	Seconds       float64 `json:"seconds,omitempty"`
}

// EpochMean is the epoch's statistic from its steps: the means of loss and
// accuracy weighted by the images of each step (every sample of the epoch
// counts once, as if it were one batch), and the steps' seconds summed. No
// steps give a zero statistic.
// The single-process loop and the coordinator's epoch summary both use it.
func EpochMean(epoch int, steps []StepStat) EpochStat {
	es := EpochStat{Epoch: epoch}
	n := 0
	for _, s := range steps {
		es.Loss += s.Loss * float64(s.Images)
		es.Accuracy += s.Accuracy * float64(s.Images)
		es.ClassLoss += s.ClassLoss
		es.ClassAccuracy += s.ClassAccuracy
		es.Seconds += s.Seconds
		n += s.Images
	}
	if n > 0 {
		es.Loss, es.Accuracy = es.Loss/float64(n), es.Accuracy/float64(n)
		es.ClassLoss, es.ClassAccuracy = es.ClassLoss/float64(len(steps)), es.ClassAccuracy/float64(len(steps))
	}
	return es
}
