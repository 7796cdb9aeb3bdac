package operator

import (
	"context"
	"errors"
	"fmt"

	"github.com/whorl-ml/whorl/operator/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Options are `whorl operator`'s settings.
type Options struct {
	// Rest reaches the kube-apiserver.
	Rest *rest.Config
	// Namespace is the one namespace whose WhorlJobs the operator runs
	// (its RBAC is a Role there).
	Namespace string
	// Dial returns a coordinator group's client.
	Dial Dialer
	// MetricsAddr serves the controller's Prometheus metrics ("0": off).
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz ("0": off).
	HealthAddr string
	// LeaderElection makes one of several operator replicas act (a Lease
	// named whorl-operator in Namespace).
	LeaderElection bool
	// Reconciler holds the polling intervals; Client, Events and Dial are
	// filled in here.
	Reconciler Config
	// ControllerName names the controller in logs and metrics ("whorljob"
	// when empty); one process runs one operator, so only tests that start
	// several set it.
	ControllerName string
}

// Scheme returns a scheme of the built-in kinds and WhorlJob.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs the WhorlJob controller until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Rest == nil || o.Namespace == "" || o.Dial == nil {
		return errors.New("operator: Rest, Namespace and Dial are required")
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	mgr, err := manager.New(o.Rest, manager.Options{
		Scheme:                  scheme,
		Cache:                   cache.Options{DefaultNamespaces: map[string]cache.Config{o.Namespace: {}}},
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.HealthAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "whorl-operator",
		LeaderElectionNamespace: o.Namespace,
	})
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	rc := o.Reconciler
	rc.Client, rc.Events, rc.Dial = mgr.GetClient(), mgr.GetEventRecorder("whorl-operator"), o.Dial
	r, err := NewReconciler(rc)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.SetupWithManager(mgr, o.ControllerName); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// SetupWithManager registers the controller (name "" is "whorljob"):
// every change of a WhorlJob reconciles the WhorlJobs of its coordinator
// group.
func (r *Reconciler) SetupWithManager(mgr manager.Manager, name string) error {
	if name == "" {
		name = "whorljob"
	}
	if err := mgr.Add(r.exports); err != nil {
		return err
	}
	return builder.ControllerManagedBy(mgr).
		Named(name).
		Watches(&v1alpha1.WhorlJob{}, handler.EnqueueRequestsFromMapFunc(r.groupRequests)).
		Complete(r)
}
