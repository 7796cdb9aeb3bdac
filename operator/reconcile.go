package operator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/operator/v1alpha1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Finalizer holds a deleted WhorlJob until the operator has cancelled it
// on the coordinators.
const Finalizer = v1alpha1.Group + "/cancel"

// cancelGiveUp is how long a deleted WhorlJob waits for its coordinators
// to take the cancel before the finalizer goes anyway (the coordinators
// are gone, say), with a Warning event.
const cancelGiveUp = 2 * time.Minute

// EventRecorder records Kubernetes Events (events.k8s.io); the manager's
// GetEventRecorder gives one.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Event types.
const (
	eventNormal  = "Normal"
	eventWarning = "Warning"
)

// Config is the Reconciler's settings.
type Config struct {
	// Client reads and writes the cluster (the manager's).
	Client crclient.Client
	// Events records the WhorlJobs' Events.
	Events EventRecorder
	// Dial returns a coordinator group's client by address.
	Dial Dialer
	// Poll is how often a running job's status is read.
	Poll time.Duration
	// QueuePoll is how often a queued job looks at its queue again
	// (besides every change of its group's WhorlJobs).
	QueuePoll time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// OpenResults opens a WhorlJob's spec.results destination (the
	// bucket package's s3://, gs:// and file:// when nil).
	OpenResults OpenResults
	// Scratch is the folder a job's files pass through on their way to
	// spec.results, one at a time (os.TempDir() when empty).
	Scratch string
}

// DefaultConfig returns the polling intervals the operator runs with.
func DefaultConfig() Config {
	return Config{Poll: 2 * time.Second, QueuePoll: 30 * time.Second}
}

// Validate names the first missing or out-of-range setting.
func (c Config) Validate() error {
	switch {
	case c.Client == nil:
		return errors.New("operator config: Client is required")
	case c.Events == nil:
		return errors.New("operator config: Events is required")
	case c.Dial == nil:
		return errors.New("operator config: Dial is required")
	case c.Poll < 100*time.Millisecond || c.Poll > 10*time.Minute:
		return fmt.Errorf("operator config: Poll = %v, want 100ms..10m", c.Poll)
	case c.QueuePoll < c.Poll || c.QueuePoll > time.Hour:
		return fmt.Errorf("operator config: QueuePoll = %v, want Poll (%v)..1h", c.QueuePoll, c.Poll)
	}
	return nil
}

// Reconciler moves WhorlJobs through their lives (see the package doc).
type Reconciler struct {
	cfg    Config
	coords *coordinators
	// rates keeps, per coordinator job id, where pretraining was when the
	// operator first saw it, for the ETA.
	mu    sync.Mutex
	rates map[string]mark
	// rings keeps, per job id, the ring's members at the last poll, for
	// the WorkerLost event.
	rings map[string][]string
	// exports copies succeeded jobs' files to their spec.results.
	exports *exports
}

// mark is a pretraining progress seen at a time.
type mark struct {
	at       time.Time
	progress float64
}

// NewReconciler checks the config and returns a Reconciler.
func NewReconciler(c Config) (*Reconciler, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.OpenResults == nil {
		c.OpenResults = openBucket
	}
	if c.Scratch == "" {
		c.Scratch = os.TempDir()
	}
	return &Reconciler{
		cfg: c, coords: &coordinators{dial: c.Dial}, rates: map[string]mark{}, rings: map[string][]string{},
		exports: &exports{scratch: c.Scratch, open: c.OpenResults, now: c.Now},
	}, nil
}

// Close closes the coordinator clients.
func (r *Reconciler) Close() { r.coords.close() }

// Reconcile brings one WhorlJob a step further and writes its status.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var wj v1alpha1.WhorlJob
	if err := r.cfg.Client.Get(ctx, req.NamespacedName, &wj); err != nil {
		return reconcile.Result{}, crclient.IgnoreNotFound(err)
	}
	if !wj.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &wj)
	}
	if !controllerutil.ContainsFinalizer(&wj, Finalizer) {
		controllerutil.AddFinalizer(&wj, Finalizer)
		return reconcile.Result{}, r.cfg.Client.Update(ctx, &wj) // the update brings the next reconcile
	}
	before := wj.Status.DeepCopy()
	wj.Status.ObservedGeneration = wj.Generation
	res, err := r.step(ctx, &wj)
	if !equality.Semantic.DeepEqual(*before, wj.Status) {
		if uerr := r.cfg.Client.Status().Update(ctx, &wj); uerr != nil {
			if apierrors.IsConflict(uerr) {
				return reconcile.Result{Requeue: true}, nil
			}
			return reconcile.Result{}, errors.Join(err, fmt.Errorf("update status of WhorlJob %s/%s: %w", wj.Namespace, wj.Name, uerr))
		}
	}
	return res, err
}

// step is Reconcile's work on a live WhorlJob whose status it may change.
func (r *Reconciler) step(ctx context.Context, wj *v1alpha1.WhorlJob) (reconcile.Result, error) {
	switch {
	case wj.Status.Phase.Finished():
		return r.finished(ctx, wj)
	case wj.Spec.Suspend:
		return r.suspend(ctx, wj)
	}
	setCondition(wj, v1alpha1.ConditionSuspended, false, "NotSuspended", "spec.suspend is false")
	cfg, err := JobConfig(wj.Spec)
	if err != nil {
		r.finish(wj, v1alpha1.PhaseFailed, "InvalidJob", err.Error())
		return reconcile.Result{}, r.scaleIdle(ctx, wj)
	}
	if wj.Status.JobID == "" {
		return r.start(ctx, wj, cfg)
	}
	return r.follow(ctx, wj)
}

// active reports whether the job runs on the coordinators.
func active(wj *v1alpha1.WhorlJob) bool {
	return wj.Status.JobID != "" && !wj.Status.Phase.Finished()
}

// finished keeps a finished WhorlJob until its time to live ends.
func (r *Reconciler) finished(ctx context.Context, wj *v1alpha1.WhorlJob) (reconcile.Result, error) {
	if err := r.scaleIdle(ctx, wj); err != nil {
		return reconcile.Result{}, err
	}
	if res, pending := r.exportPending(wj); pending {
		return res, nil // the time to live waits for the copy
	}
	ttl := wj.Spec.TTLSecondsAfterFinished
	if ttl == nil || wj.Status.CompletionTime == nil {
		return reconcile.Result{}, nil
	}
	left := wj.Status.CompletionTime.Add(time.Duration(*ttl) * time.Second).Sub(r.cfg.Now())
	if left > 0 {
		return reconcile.Result{RequeueAfter: left}, nil
	}
	if err := r.cfg.Client.Delete(ctx, wj, crclient.Preconditions{UID: &wj.UID}); crclient.IgnoreNotFound(err) != nil {
		return reconcile.Result{}, fmt.Errorf("delete WhorlJob %s/%s after its ttlSecondsAfterFinished: %w", wj.Namespace, wj.Name, err)
	}
	return reconcile.Result{}, nil
}

// suspend cancels a running job and holds the WhorlJob back.
func (r *Reconciler) suspend(ctx context.Context, wj *v1alpha1.WhorlJob) (reconcile.Result, error) {
	if active(wj) {
		if err := r.cancel(ctx, wj); err != nil {
			wj.Status.Message = err.Error()
			return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
		}
		r.cfg.Events.Eventf(wj, nil, eventNormal, "Suspended", "Cancel",
			"spec.suspend: cancelled job %s on the coordinators; resumed, the WhorlJob queues again and starts over", wj.Status.JobID)
	}
	if wj.Status.Phase != v1alpha1.PhaseSuspended {
		clearRun(&wj.Status)
		wj.Status.Phase = v1alpha1.PhaseSuspended
		wj.Status.Message = "spec.suspend is true: the job waits, unsubmitted"
	}
	setCondition(wj, v1alpha1.ConditionSuspended, true, "Suspended", "spec.suspend is true")
	setCondition(wj, v1alpha1.ConditionRunning, false, "Suspended", "spec.suspend is true")
	return reconcile.Result{}, r.scaleIdle(ctx, wj)
}

// finalize cancels a deleted WhorlJob's running job, then lets it go.
func (r *Reconciler) finalize(ctx context.Context, wj *v1alpha1.WhorlJob) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(wj, Finalizer) {
		return reconcile.Result{}, nil
	}
	if active(wj) {
		if err := r.cancel(ctx, wj); err != nil {
			if r.cfg.Now().Sub(wj.DeletionTimestamp.Time) < cancelGiveUp {
				return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
			}
			r.cfg.Events.Eventf(wj, nil, eventWarning, "CancelFailed", "Cancel",
				"gave up cancelling job %s after %v: %v", wj.Status.JobID, cancelGiveUp, err)
		} else {
			r.cfg.Events.Eventf(wj, nil, eventNormal, "Cancelled", "Cancel", "deleted: cancelled job %s on the coordinators", wj.Status.JobID)
		}
	}
	r.exports.forget(wj.Status.JobID) // a copy to spec.results stops with its WhorlJob
	controllerutil.RemoveFinalizer(wj, Finalizer)
	if err := r.cfg.Client.Update(ctx, wj); crclient.IgnoreNotFound(err) != nil {
		return reconcile.Result{}, fmt.Errorf("remove finalizer of WhorlJob %s/%s: %w", wj.Namespace, wj.Name, err)
	}
	r.forget(wj.Status.JobID)
	return reconcile.Result{}, r.scaleIdle(ctx, wj)
}

// cancel cancels the WhorlJob's job on the coordinators; a job they no
// longer run (over, or unknown) needs no cancel.
func (r *Reconciler) cancel(ctx context.Context, wj *v1alpha1.WhorlJob) error {
	cl, err := r.coords.get(coordinatorAddr(wj))
	if err != nil {
		return err
	}
	_, err = cl.CancelJob(ctx, wj.Status.JobID)
	if err == nil || errors.Is(err, client.ErrWrongPhase) || errors.Is(err, client.ErrNoJob) {
		return nil
	}
	return fmt.Errorf("cancel job %s on %s: %w", wj.Status.JobID, coordinatorAddr(wj), err)
}

// finish ends the WhorlJob in phase p (Succeeded, Failed or Cancelled).
func (r *Reconciler) finish(wj *v1alpha1.WhorlJob, p v1alpha1.Phase, reason, msg string) {
	now := metav1.NewTime(r.cfg.Now())
	wj.Status.Phase, wj.Status.Message, wj.Status.CompletionTime = p, msg, &now
	wj.Status.ETA, wj.Status.Remaining, wj.Status.QueuePosition = nil, "", 0
	setCondition(wj, v1alpha1.ConditionRunning, false, reason, msg)
	setCondition(wj, v1alpha1.ConditionSucceeded, p == v1alpha1.PhaseSucceeded, reason, msg)
	setCondition(wj, v1alpha1.ConditionFailed, p != v1alpha1.PhaseSucceeded, reason, msg)
	kind := eventNormal
	if p != v1alpha1.PhaseSucceeded {
		kind = eventWarning
	}
	r.cfg.Events.Eventf(wj, nil, kind, string(p), "Finish", "%s", msg)
	r.forget(wj.Status.JobID)
}

// clearRun empties the fields of a run, for a job that starts over.
func clearRun(s *v1alpha1.WhorlJobStatus) {
	keep := s.Conditions
	og := s.ObservedGeneration
	*s = v1alpha1.WhorlJobStatus{Conditions: keep, ObservedGeneration: og}
}

// setCondition sets a condition of the WhorlJob.
func setCondition(wj *v1alpha1.WhorlJob, typ string, status bool, reason, msg string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&wj.Status.Conditions, metav1.Condition{
		Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: wj.Generation,
	})
}

// forget drops a job's ETA mark.
func (r *Reconciler) forget(jobID string) {
	r.mu.Lock()
	delete(r.rates, jobID)
	delete(r.rings, jobID)
	r.mu.Unlock()
}
