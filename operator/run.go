package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/operator/v1alpha1"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// start submits the WhorlJob when it heads its group's queue and enough
// workers are ready.
func (r *Reconciler) start(ctx context.Context, wj *v1alpha1.WhorlJob, cfg job.Config) (reconcile.Result, error) {
	group, err := r.group(ctx, wj)
	if err != nil {
		return reconcile.Result{}, err
	}
	if before := ahead(group, wj); len(before) > 0 {
		r.queued(wj, int32(len(before)), fmt.Sprintf("queued behind %d WhorlJob(s) of coordinators %s, first %s",
			len(before), coordinatorAddr(wj), before[0]))
		return reconcile.Result{RequeueAfter: r.cfg.QueuePoll}, nil
	}
	if err := r.checkResults(ctx, wj); err != nil {
		r.queued(wj, 0, err.Error()+" (the job waits until its results can be delivered)")
		return reconcile.Result{RequeueAfter: r.cfg.QueuePoll}, nil
	}
	name, lo, hi := workerDeployment(wj)
	d, err := r.scale(ctx, wj.Namespace, name, hi)
	if err != nil {
		r.queued(wj, 0, err.Error())
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
	}
	wj.Status.ReadyWorkers = d.Status.ReadyReplicas
	if !r.workersAvailable(wj, d.Status.ReadyReplicas, lo) {
		r.queued(wj, 0, fmt.Sprintf("waiting for %d ready workers of Deployment %s (%d ready)", lo, name, d.Status.ReadyReplicas))
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
	}
	return r.submit(ctx, wj, cfg)
}

// queued shows the WhorlJob waiting, with why.
func (r *Reconciler) queued(wj *v1alpha1.WhorlJob, position int32, msg string) {
	if wj.Status.Phase != v1alpha1.PhaseQueued {
		r.cfg.Events.Eventf(wj, nil, eventNormal, "Queued", "Queue", "%s", msg)
	}
	wj.Status.Phase, wj.Status.QueuePosition, wj.Status.Message = v1alpha1.PhaseQueued, position, msg
}

// workersAvailable records whether at least lo workers are ready (a
// Warning event when that changes to false while the job runs).
func (r *Reconciler) workersAvailable(wj *v1alpha1.WhorlJob, ready, lo int32) bool {
	ok := ready >= lo
	was := metaTrue(wj, v1alpha1.ConditionWorkersAvailable)
	msg := fmt.Sprintf("%d workers ready, %d wanted at least", ready, lo)
	setCondition(wj, v1alpha1.ConditionWorkersAvailable, ok, map[bool]string{true: "Ready", false: "TooFewReady"}[ok], msg)
	if !ok && was && active(wj) {
		r.cfg.Events.Eventf(wj, nil, eventWarning, "TooFewWorkers", "Watch", "%s; the ring trains on with what it has", msg)
	}
	return ok
}

// submit sends the job (cfg, its spec's configuration) to the
// coordinators.
func (r *Reconciler) submit(ctx context.Context, wj *v1alpha1.WhorlJob, cfg job.Config) (reconcile.Result, error) {
	addr := coordinatorAddr(wj)
	cl, err := r.coords.get(addr)
	if err != nil {
		r.queued(wj, 0, err.Error())
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
	}
	id, err := cl.SubmitJob(ctx, cfg.JSON())
	switch {
	case errors.Is(err, client.ErrJobRunning):
		r.queued(wj, 0, fmt.Sprintf("the coordinators %s run a job that is not this group's WhorlJob (whorl submit?): %v", addr, err))
		return reconcile.Result{RequeueAfter: r.cfg.QueuePoll}, nil
	case errors.Is(err, client.ErrBadJob), errors.Is(err, client.ErrJobTooLarge), errors.Is(err, client.ErrBadRequest):
		r.finish(wj, v1alpha1.PhaseFailed, "Refused", fmt.Sprintf("the coordinators %s refused the job: %v", addr, err))
		return reconcile.Result{}, r.scaleIdle(ctx, wj)
	case err != nil:
		r.queued(wj, 0, fmt.Sprintf("submit to %s: %v", addr, err))
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
	}
	now := metav1.NewTime(r.cfg.Now())
	wj.Status.JobID, wj.Status.StartTime = id, &now
	wj.Status.Phase, wj.Status.QueuePosition = v1alpha1.PhasePending, 0
	wj.Status.Message = fmt.Sprintf("submitted to %s as job %s", addr, id)
	wj.Status.Fetch = fmt.Sprintf("whorl fetch --coordinator %s --job %s --out %s", addr, id, wj.Name)
	setCondition(wj, v1alpha1.ConditionSubmitted, true, "Submitted", wj.Status.Message)
	setCondition(wj, v1alpha1.ConditionRunning, true, "Submitted", wj.Status.Message)
	r.cfg.Events.Eventf(wj, nil, eventNormal, "Submitted", "Submit", "%s", wj.Status.Message)
	return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
}

// follow reads the running job's status from the coordinators.
func (r *Reconciler) follow(ctx context.Context, wj *v1alpha1.WhorlJob) (reconcile.Result, error) {
	addr := coordinatorAddr(wj)
	cl, err := r.coords.get(addr)
	if err != nil {
		wj.Status.Message = err.Error()
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
	}
	name, lo, hi := workerDeployment(wj)
	if d, err := r.clamp(ctx, wj.Namespace, name, lo, hi); err == nil {
		wj.Status.ReadyWorkers = d.Status.ReadyReplicas
		r.workersAvailable(wj, d.Status.ReadyReplicas, lo)
	}
	st, err := cl.JobStatus(ctx)
	if err != nil {
		wj.Status.Message = fmt.Sprintf("status from %s: %v (retrying)", addr, err)
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
	}
	if st.GetJobId() != wj.Status.JobID || terminal(st.GetPhase()) {
		return r.conclude(ctx, wj, cl)
	}
	r.observe(wj, st)
	return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
}

// terminal reports whether a coordinator phase is an end.
func terminal(p pb.Phase) bool { return p == pb.Phase_PHASE_DONE || p == pb.Phase_PHASE_FAILED }

// conclude ends the WhorlJob from the coordinators' results for its job.
func (r *Reconciler) conclude(ctx context.Context, wj *v1alpha1.WhorlJob, cl Coordinator) (reconcile.Result, error) {
	res, err := cl.FetchResults(ctx, wj.Status.JobID)
	switch {
	case errors.Is(err, client.ErrNoJob):
		r.finish(wj, v1alpha1.PhaseFailed, "JobLost",
			fmt.Sprintf("the coordinators %s no longer know job %s (their state was reset, or another job replaced it)", coordinatorAddr(wj), wj.Status.JobID))
		return reconcile.Result{}, r.scaleIdle(ctx, wj)
	case err != nil:
		wj.Status.Message = fmt.Sprintf("results from %s: %v (retrying)", coordinatorAddr(wj), err)
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
	}
	switch res.GetPhase() {
	case pb.Phase_PHASE_DONE:
		result, err := parseResult(res.GetReportJson())
		if err != nil {
			r.finish(wj, v1alpha1.PhaseFailed, "BadReport", err.Error())
			break
		}
		wj.Status.Result = result
		wj.Status.Progress = "100%"
		r.finish(wj, v1alpha1.PhaseSucceeded, "Done", fmt.Sprintf("done: baseline %s, fine-tuned %s, gain %s points; %s",
			result.Baseline, result.FineTuned, result.Gain, wj.Status.Fetch))
	case pb.Phase_PHASE_FAILED:
		reason := res.GetFailureReason()
		if strings.HasPrefix(reason, "cancelled by") {
			r.finish(wj, v1alpha1.PhaseCancelled, "Cancelled", reason)
		} else {
			r.finish(wj, v1alpha1.PhaseFailed, "JobFailed", reason)
		}
	default: // the coordinators run another job, ours is not over: it was replaced
		wj.Status.Message = fmt.Sprintf("job %s is %s but the coordinators run another job (retrying)", wj.Status.JobID, res.GetPhase().Label())
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, nil
	}
	return reconcile.Result{}, r.scaleIdle(ctx, wj)
}
