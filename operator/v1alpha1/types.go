package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WhorlJob is one RotNet experiment run on a whorl coordinator group: the
// operator queues it behind the group's earlier WhorlJobs, scales the
// workers up, submits it, follows it to the end and scales the workers
// down when the group's queue is empty.
type WhorlJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the job as its author wants it.
	Spec WhorlJobSpec `json:"spec"`
	// Status is what the operator last saw of the job.
	Status WhorlJobStatus `json:"status,omitempty"`
}

// WhorlJobList is a list of WhorlJobs.
type WhorlJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the WhorlJobs.
	Items []WhorlJob `json:"items"`
}

// WhorlJobSpec is a job and where and how to run it.
type WhorlJobSpec struct {
	// Preset is the experiment configuration the job starts from (whorl
	// submit --preset): quick, quick48, flowers, flowers96, paper or seed.
	Preset string `json:"preset,omitempty"`
	// Job holds the keys of the experiment configuration laid over the
	// preset, as in report.json's "config" and whorl submit --job: a key
	// left out keeps the preset's value. The operator validates the result
	// with the coordinator's own rules and names the key it refuses.
	Job *apiextensionsv1.JSON `json:"job,omitempty"`
	// Coordinator is the coordinator group the job is submitted to; the
	// WhorlJobs of one group run one at a time, in creation order.
	Coordinator CoordinatorRef `json:"coordinator,omitempty"`
	// Workers is the worker Deployment and the range of workers the job
	// runs with.
	Workers WorkerRange `json:"workers,omitempty"`
	// Suspend holds the job back (Kueue's contract, as batch/v1 Job's): a
	// suspended job is not submitted, and suspending a running one cancels
	// it on the coordinators; resuming it queues it again and it starts
	// over from its first step.
	Suspend bool `json:"suspend,omitempty"`
	// TTLSecondsAfterFinished deletes the WhorlJob this long after it
	// finished (succeeded, failed or cancelled); unset keeps it.
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// Results is where the operator copies the job's files once it
	// succeeded; unset leaves them on the coordinators (status.fetch).
	Results *ResultsDestination `json:"results,omitempty"`
}

// ResultsDestination is an object store folder a succeeded job's files
// are copied into.
type ResultsDestination struct {
	// URL is the folder: s3://bucket/prefix (Amazon S3, or an
	// S3-compatible server with ?endpoint=URL&use_path_style=true),
	// gs://bucket/prefix, or file:///path on a volume the operator
	// mounts. The files of job ID go under <url>/<ID>/, with a SHA256SUMS
	// written last (sha256sum -c checks them). The credentials are the
	// operator's own: the AWS_* variables of its environment (the
	// optional Secret whorl-results in k8s/base) or Google's Application
	// Default Credentials. The operator checks the folder is reachable
	// before it submits the job, which waits queued until it is; the
	// WhorlJob's time to live waits until the copy is done or can no
	// longer be (condition ResultsExported); deleting it stops the copy.
	URL string `json:"url"`
}

// CoordinatorRef names a coordinator group by its Service in the
// WhorlJob's namespace. The operator dials it with its own identity (its
// --tls-cert, --tls-key and --tls-ca), the one RBAC and the coordinators
// both know.
type CoordinatorRef struct {
	// Service is the coordinators' Service (the StatefulSet's headless
	// Service); the operator dials <service>.<namespace>.svc and follows
	// the raft leader from there.
	Service string `json:"service,omitempty"`
	// Port is the coordinators' gRPC port.
	Port int32 `json:"port,omitempty"`
}

// WorkerRange is the worker Deployment and its size while the job runs.
type WorkerRange struct {
	// Deployment is the workers' Deployment in the WhorlJob's namespace;
	// the operator sets its replicas to Max when a job of the group
	// starts, keeps them within [Min, Max] while it runs (scaling by hand
	// inside the range stays) and sets them to 0 when the group's queue is
	// empty.
	Deployment string `json:"deployment,omitempty"`
	// Min is the number of ready workers the job waits for before it is
	// submitted; while it runs, fewer ready workers than Min is reported
	// (condition WorkersAvailable false, a Warning event). The ring trains
	// with whatever workers it has.
	Min *int32 `json:"min,omitempty"`
	// Max is the worker Deployment's replicas while the job runs.
	Max int32 `json:"max,omitempty"`
}

// Phase is a WhorlJob's place in its life.
type Phase string

// The phases of a WhorlJob: Queued and Suspended before it is submitted,
// the coordinator's phases while it runs, and three ends.
const (
	PhaseQueued      Phase = "Queued"
	PhaseSuspended   Phase = "Suspended"
	PhasePending     Phase = "Pending"
	PhasePretraining Phase = "Pretraining"
	PhaseBaseline    Phase = "Baseline"
	PhaseFineTuning  Phase = "FineTuning"
	PhaseEvaluating  Phase = "Evaluating"
	PhaseSucceeded   Phase = "Succeeded"
	PhaseFailed      Phase = "Failed"
	PhaseCancelled   Phase = "Cancelled"
)

// Finished reports whether the phase is one of the three ends.
func (p Phase) Finished() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseCancelled
}

// Condition types of a WhorlJob.
const (
	// ConditionSubmitted is true once the coordinators accepted the job.
	ConditionSubmitted = "Submitted"
	// ConditionRunning is true while the coordinators run the job.
	ConditionRunning = "Running"
	// ConditionSucceeded is true once the job is done with a report.
	ConditionSucceeded = "Succeeded"
	// ConditionFailed is true once the job failed or was refused.
	ConditionFailed = "Failed"
	// ConditionSuspended is true while spec.suspend holds the job back.
	ConditionSuspended = "Suspended"
	// ConditionWorkersAvailable is whether at least spec.workers.min
	// workers are ready.
	ConditionWorkersAvailable = "WorkersAvailable"
	// ConditionResultsExported is whether a succeeded job's files are
	// all in spec.results (False while they are copied, with the reason
	// Exporting, Retrying or Failed).
	ConditionResultsExported = "ResultsExported"
)

// WhorlJobStatus is the job as the operator last saw it on the
// coordinators.
type WhorlJobStatus struct {
	// ObservedGeneration is the spec generation this status is of.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is where the job is (Queued, Suspended, Pending, Pretraining,
	// Baseline, FineTuning, Evaluating, Succeeded, Failed, Cancelled).
	Phase Phase `json:"phase,omitempty"`
	// Message says why the job is in its phase (its place in the queue,
	// what it waits for, the failure's reason).
	Message string `json:"message,omitempty"`
	// QueuePosition is the number of the group's jobs ahead of a queued
	// one (0 when it is not queued).
	QueuePosition int32 `json:"queuePosition,omitempty"`
	// JobID is the coordinators' id of the job (whorl status, whorl
	// fetch --job).
	JobID string `json:"jobID,omitempty"`
	// Epoch is pretraining's epoch (1-based while it runs).
	Epoch int32 `json:"epoch,omitempty"`
	// TotalEpochs is the number of pretraining epochs.
	TotalEpochs int32 `json:"totalEpochs,omitempty"`
	// Step is the number of the epoch's steps done.
	Step int32 `json:"step,omitempty"`
	// TotalSteps is the number of steps of an epoch.
	TotalSteps int32 `json:"totalSteps,omitempty"`
	// EpochProgress is "epoch/total" as the printer column shows it.
	EpochProgress string `json:"epochProgress,omitempty"`
	// Progress is the share of pretraining's steps done, "0%" to "100%".
	Progress string `json:"progress,omitempty"`
	// ETA is the time pretraining is estimated to end at, from its rate so
	// far.
	ETA *metav1.Time `json:"eta,omitempty"`
	// Remaining is the time from the last poll to ETA ("4m10s"), as the
	// printer column shows it.
	Remaining string `json:"remaining,omitempty"`
	// Workers is the number of workers in the ring.
	Workers int32 `json:"workers,omitempty"`
	// ReadyWorkers is the worker Deployment's ready replicas.
	ReadyWorkers int32 `json:"readyWorkers,omitempty"`
	// Generation is the ring's generation: it changes whenever a worker
	// joins or is lost.
	Generation int64 `json:"generation,omitempty"`
	// GenerationChanges counts the ring's changes during the job.
	GenerationChanges int64 `json:"generationChanges,omitempty"`
	// Leader is the raft leader's server id.
	Leader string `json:"leader,omitempty"`
	// Result is the job's outcome once it succeeded.
	Result *Result `json:"result,omitempty"`
	// Fetch is the command that downloads the job's report, plots and
	// checkpoints, verified by digest.
	Fetch string `json:"fetch,omitempty"`
	// ResultsURL is the folder spec.results' copy of the job's files is
	// in, once it is complete (<spec.results.url>/<jobID>/, without the
	// URL's parameters).
	ResultsURL string `json:"resultsURL,omitempty"`
	// StartTime is when the job was submitted.
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// CompletionTime is when the job finished.
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Conditions are Submitted, Running, Succeeded, Failed, Suspended,
	// WorkersAvailable and ResultsExported.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Result is a finished job's test accuracies, as report.md gives them.
type Result struct {
	// Baseline is the supervised baseline's test accuracy ("63.5%").
	Baseline string `json:"baseline,omitempty"`
	// FineTuned is the fine-tuned pretrained network's test accuracy.
	FineTuned string `json:"fineTuned,omitempty"`
	// Gain is the difference in points ("+3.4").
	Gain string `json:"gain,omitempty"`
	// Rotation is the pretext's test accuracy at predicting the rotation.
	Rotation string `json:"rotation,omitempty"`
}
