package operator

import (
	"context"
	"errors"
	"fmt"

	"github.com/whorl-ml/whorl/operator/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Reasons of the ResultsExported condition.
const (
	reasonExporting = "Exporting"
	reasonExported  = "Exported"
	reasonRetrying  = "Retrying"
	reasonFailed    = "Failed"
)

// checkResults makes sure a WhorlJob's results destination can be
// reached before its job is submitted: a job that trains for hours and
// then cannot deliver its files should wait instead, saying why.
func (r *Reconciler) checkResults(ctx context.Context, wj *v1alpha1.WhorlJob) error {
	if wj.Spec.Results == nil {
		return nil
	}
	dst, err := r.cfg.OpenResults(ctx, wj.Spec.Results.URL, true)
	if err != nil {
		return fmt.Errorf("spec.results: %w", err)
	}
	return dst.Close()
}

// exportPending copies a succeeded job's files to spec.results (in the
// background, see exports) and reports whether the copy is still to be
// settled: done, or failed for good.
func (r *Reconciler) exportPending(wj *v1alpha1.WhorlJob) (reconcile.Result, bool) {
	if wj.Spec.Results == nil || wj.Status.Phase != v1alpha1.PhaseSucceeded || exportSettled(wj) {
		return reconcile.Result{}, false
	}
	id, url := wj.Status.JobID, wj.Spec.Results.URL
	run := r.exports.run(id)
	if run == nil {
		return r.beginExport(wj)
	}
	select {
	case <-run.done:
	default:
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, true
	}
	folder := resultsFolder(url, id)
	switch {
	case run.err == nil:
		r.exports.forget(id)
		wj.Status.ResultsURL = folder
		msg := fmt.Sprintf("%d files and %s in %s", run.files, SumsFile, folder)
		setCondition(wj, v1alpha1.ConditionResultsExported, true, reasonExported, msg)
		r.cfg.Events.Eventf(wj, nil, eventNormal, "ResultsExported", "Export", "%s", msg)
		return reconcile.Result{}, false
	case errors.Is(run.err, errPermanent):
		r.exports.forget(id)
		msg := fmt.Sprintf("copy to %s failed for good: %v", folder, run.err)
		setCondition(wj, v1alpha1.ConditionResultsExported, false, reasonFailed, msg)
		r.cfg.Events.Eventf(wj, nil, eventWarning, "ExportFailed", "Export", "%s", msg)
		return reconcile.Result{}, false
	}
	if wait := run.ended.Add(r.cfg.QueuePoll).Sub(r.cfg.Now()); wait > 0 {
		if reason(wj, v1alpha1.ConditionResultsExported) != reasonRetrying {
			r.cfg.Events.Eventf(wj, nil, eventWarning, "ExportRetrying", "Export", "copy to %s: %v; retrying every %v", folder, run.err, r.cfg.QueuePoll)
		}
		setCondition(wj, v1alpha1.ConditionResultsExported, false, reasonRetrying,
			fmt.Sprintf("copy to %s: %v (retrying every %v)", folder, run.err, r.cfg.QueuePoll))
		return reconcile.Result{RequeueAfter: wait}, true
	}
	r.exports.forget(id)
	return r.beginExport(wj)
}

// beginExport starts copying the job's files.
func (r *Reconciler) beginExport(wj *v1alpha1.WhorlJob) (reconcile.Result, bool) {
	id, url := wj.Status.JobID, wj.Spec.Results.URL
	cl, err := r.coords.get(coordinatorAddr(wj))
	if err == nil {
		err = r.exports.begin(id, url, cl)
	}
	if err != nil {
		setCondition(wj, v1alpha1.ConditionResultsExported, false, reasonRetrying, fmt.Sprintf("copy to %s: %v", resultsFolder(url, id), err))
		return reconcile.Result{RequeueAfter: r.cfg.Poll}, true
	}
	if reason(wj, v1alpha1.ConditionResultsExported) != reasonRetrying {
		setCondition(wj, v1alpha1.ConditionResultsExported, false, reasonExporting,
			fmt.Sprintf("copying job %s's files to %s", id, resultsFolder(url, id)))
	}
	return reconcile.Result{RequeueAfter: r.cfg.Poll}, true
}

// exportSettled reports whether the job's copy is done or failed for good.
func exportSettled(wj *v1alpha1.WhorlJob) bool {
	c := meta.FindStatusCondition(wj.Status.Conditions, v1alpha1.ConditionResultsExported)
	return c != nil && (c.Status == metav1.ConditionTrue || c.Reason == reasonFailed)
}

// reason is a condition's reason ("" when the WhorlJob has none).
func reason(wj *v1alpha1.WhorlJob, typ string) string {
	if c := meta.FindStatusCondition(wj.Status.Conditions, typ); c != nil {
		return c.Reason
	}
	return ""
}
