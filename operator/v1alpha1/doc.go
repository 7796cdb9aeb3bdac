// Package v1alpha1 is the WhorlJob API (group whorl-ml.github.io, version
// v1alpha1): a job submitted to a long-lived coordinator group, as KubeRay's
// RayJob is to a RayCluster. The spec is the experiment configuration (a
// preset and the keys laid over it, the same as `whorl submit --preset
// --job`), the coordinators to submit to, the worker range, suspend
// (Kueue's contract) and a time to live; the status is what `whorl status`
// shows, in Kubernetes' terms: a phase, progress, ETA, workers, ring
// generation, raft leader, the result and conditions.
//
// The package holds the Go types, their deep copies and the scheme; the
// CustomResourceDefinition (k8s/base/crd-whorljob.yaml) is generated from
// them and from package job's configuration (operator.CRD), so `kubectl
// explain whorljob.spec.job.pretrain.epochs` reads the job's own doc
// comment. The controller is package operator.
package v1alpha1
