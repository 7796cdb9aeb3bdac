// Package operator is `whorl operator`: the WhorlJob controller (package
// v1alpha1 is its API), built on controller-runtime.
//
// A WhorlJob is submitted to a long-lived coordinator group, as KubeRay's
// RayJob is to a RayCluster. The controller keeps one queue per group (the
// WhorlJobs naming one coordinator Service, in creation order; one runs at a
// time), scales the group's worker Deployment to the running job's maximum
// and to zero when the queue is empty, submits the job when at least its
// minimum of workers is ready, and polls the coordinators (the
// leader-following client of coordinator/client) for the status that
// `kubectl get whorljobs` prints: phase, epoch, progress, ETA, workers,
// ring generation, raft leader and, at the end, the result. It records an
// Event on every phase change and on every fault the coordinators survived
// (a new raft leader, a worker lost). Deleting or suspending a running
// WhorlJob cancels it on the coordinators (a finalizer holds the object
// until they have); ttlSecondsAfterFinished deletes a finished one.
//
// The operator holds the only RBAC of the deployment: whorl's own pods run
// without a service-account token. It reads no job state of its own: the
// coordinators' raft log is the truth, the WhorlJob's status a view of it,
// so a restarted operator picks up where its predecessor left.
//
// crd.go generates the CustomResourceDefinition from the Go types and
// job.Config (the test keeps k8s/base/crd-whorljob.yaml equal to it).
package operator
