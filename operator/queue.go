package operator

import (
	"context"
	"fmt"
	"sort"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/operator/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// JobConfig is the experiment configuration a WhorlJob's spec gives: its
// preset (quick when empty) with spec.job's keys laid over it, validated
// as the coordinators will (job.Overlay, job.Validate: the error names the
// key and its bound).
func JobConfig(spec v1alpha1.WhorlJobSpec) (job.Config, error) {
	preset := spec.Preset
	if preset == "" {
		preset = job.PresetQuick
	}
	base, err := job.Preset(preset)
	if err != nil {
		return job.Config{}, fmt.Errorf("spec.preset: %w", err)
	}
	if spec.Job == nil || len(spec.Job.Raw) == 0 {
		return base, base.Validate()
	}
	c, err := job.Overlay(base, spec.Job.Raw)
	if err != nil {
		return job.Config{}, fmt.Errorf("spec.job: %w", err)
	}
	return c, nil
}

// coordinatorAddr is the address the operator dials for a WhorlJob's
// coordinators: <service>.<namespace>.svc:<port>.
func coordinatorAddr(wj *v1alpha1.WhorlJob) string {
	svc, port := wj.Spec.Coordinator.Service, wj.Spec.Coordinator.Port
	if svc == "" {
		svc = DefaultCoordinatorService
	}
	if port == 0 {
		port = DefaultCoordinatorPort
	}
	return fmt.Sprintf("%s.%s.svc:%d", svc, wj.Namespace, port)
}

// workerDeployment is the WhorlJob's worker Deployment and range, the
// defaults filled in.
func workerDeployment(wj *v1alpha1.WhorlJob) (name string, lo, hi int32) {
	w := wj.Spec.Workers
	name, lo, hi = w.Deployment, DefaultMinWorkers, w.Max
	if w.Min != nil {
		lo = *w.Min
	}
	if name == "" {
		name = DefaultWorkerDeployment
	}
	if hi == 0 {
		hi = max(DefaultMaxWorkers, lo)
	}
	return name, lo, hi
}

// waiting reports whether a WhorlJob waits in its group's queue or runs:
// live, not finished, not suspended.
func waiting(wj *v1alpha1.WhorlJob) bool {
	return wj.DeletionTimestamp.IsZero() && !wj.Status.Phase.Finished() && !wj.Spec.Suspend
}

// group lists the WhorlJobs that share wj's coordinators, wj among them,
// in queue order: the running ones first, then by creation time (to the
// second), then by name.
func (r *Reconciler) group(ctx context.Context, wj *v1alpha1.WhorlJob) ([]v1alpha1.WhorlJob, error) {
	var list v1alpha1.WhorlJobList
	if err := r.cfg.Client.List(ctx, &list, crclient.InNamespace(wj.Namespace)); err != nil {
		return nil, fmt.Errorf("list the WhorlJobs of namespace %s: %w", wj.Namespace, err)
	}
	addr := coordinatorAddr(wj)
	var out []v1alpha1.WhorlJob
	for _, o := range list.Items {
		if coordinatorAddr(&o) == addr {
			out = append(out, o)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return queueLess(&out[i], &out[j]) })
	return out, nil
}

// queueLess orders a group's queue.
func queueLess(a, b *v1alpha1.WhorlJob) bool {
	if ra, rb := active(a), active(b); ra != rb {
		return ra
	}
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.Name < b.Name
}

// ahead returns the waiting WhorlJobs of the group queued before wj.
func ahead(group []v1alpha1.WhorlJob, wj *v1alpha1.WhorlJob) []string {
	var names []string
	for i := range group {
		o := &group[i]
		if o.UID == wj.UID {
			break
		}
		if waiting(o) {
			names = append(names, o.Name)
		}
	}
	return names
}

// scaleIdle scales the group's workers to zero when no WhorlJob of the
// group waits or runs.
func (r *Reconciler) scaleIdle(ctx context.Context, wj *v1alpha1.WhorlJob) error {
	group, err := r.group(ctx, wj)
	if err != nil {
		return err
	}
	for i := range group {
		if group[i].UID != wj.UID && waiting(&group[i]) {
			return nil
		}
	}
	if waiting(wj) {
		return nil
	}
	name, _, _ := workerDeployment(wj)
	_, err = r.scale(ctx, wj.Namespace, name, 0)
	return err
}

// clamp keeps the worker Deployment's replicas within [lo, hi] while a
// job runs: an operator may scale the workers by hand inside the range
// (the ring re-forms), and the operator does not undo it.
func (r *Reconciler) clamp(ctx context.Context, ns, name string, lo, hi int32) (*appsv1.Deployment, error) {
	return r.setReplicas(ctx, ns, name, func(n int32) int32 { return min(max(n, lo), hi) })
}

// scale sets the worker Deployment's replicas and returns it.
func (r *Reconciler) scale(ctx context.Context, ns, name string, replicas int32) (*appsv1.Deployment, error) {
	return r.setReplicas(ctx, ns, name, func(int32) int32 { return replicas })
}

// setReplicas reads the worker Deployment, patches its replicas to
// want(current) when they differ, and returns it.
func (r *Reconciler) setReplicas(ctx context.Context, ns, name string, want func(int32) int32) (*appsv1.Deployment, error) {
	var d appsv1.Deployment
	if err := r.cfg.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
		return nil, fmt.Errorf("worker Deployment %s/%s: %w", ns, name, err)
	}
	n := int32(1) // the API's default
	if d.Spec.Replicas != nil {
		n = *d.Spec.Replicas
	}
	replicas := want(n)
	if d.Spec.Replicas != nil && n == replicas {
		return &d, nil
	}
	patch := crclient.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = &replicas
	if err := r.cfg.Client.Patch(ctx, &d, patch); err != nil {
		return nil, fmt.Errorf("scale worker Deployment %s/%s to %d: %w", ns, name, replicas, err)
	}
	return &d, nil
}

// groupRequests maps a WhorlJob's change to a reconcile of every WhorlJob
// of its group, so the next in the queue starts as soon as one ends.
func (r *Reconciler) groupRequests(ctx context.Context, o crclient.Object) []reconcile.Request {
	wj, ok := o.(*v1alpha1.WhorlJob)
	if !ok {
		return nil
	}
	group, err := r.group(ctx, wj)
	if err != nil {
		return []reconcile.Request{{NamespacedName: crclient.ObjectKeyFromObject(wj)}}
	}
	reqs := []reconcile.Request{{NamespacedName: crclient.ObjectKeyFromObject(wj)}}
	for i := range group {
		if group[i].UID != wj.UID {
			reqs = append(reqs, reconcile.Request{NamespacedName: crclient.ObjectKeyFromObject(&group[i])})
		}
	}
	return reqs
}
