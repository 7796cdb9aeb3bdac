package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/cliflag"
	"github.com/whorl-ml/whorl/internal/tlsfiles"
	"github.com/whorl-ml/whorl/operator"
)

func init() { register(newOperatorCmd) }

// operatorOptions are the flags of `whorl operator`.
type operatorOptions struct {
	kubeconfig, namespace       string
	metricsAddr, healthAddr     string
	leaderElect                 bool
	poll, queuePoll, rpcTimeout time.Duration
	logFormat                   string
	scratch                     string
	tls                         tlsfiles.Files
}

func newOperatorCmd() *cobra.Command {
	o := operatorOptions{namespace: os.Getenv("POD_NAMESPACE")}
	if o.namespace == "" {
		o.namespace = "whorl"
	}
	def := operator.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Run the WhorlJob controller on Kubernetes (queue, submit, follow, cancel)",
		Long: `operator runs the controller of the WhorlJob custom resource
(whorl-ml.github.io/v1alpha1, k8s/base/crd-whorljob.yaml) for the WhorlJobs of
--namespace. Each WhorlJob names a coordinator group (spec.coordinator, the
coordinators' Service); the group's WhorlJobs run one at a time, in creation
order. The operator scales the group's worker Deployment to spec.workers.max
while a job runs and to 0 when the queue is empty, submits the job once
spec.workers.min workers are ready, and writes what the coordinators report into
the WhorlJob's status: kubectl get whorljobs shows the phase, epoch, progress,
ETA, workers and, at the end, the gain. Events record every phase change and
every fault the coordinators survived (a new raft leader, a worker lost).
Deleting or suspending (spec.suspend) a running WhorlJob cancels its job on the
coordinators; ttlSecondsAfterFinished deletes a finished one. With spec.results,
a succeeded job's files are copied to an s3://, gs:// or file:// folder
(<url>/<job id>/, with SHA256SUMS last), each passing through --scratch; the
credentials are the operator's own (AWS_* variables, Google's Application
Default Credentials).

It dials the coordinators with its own identity (--tls-*: an identity of role
client may submit and cancel), reads the cluster with in-cluster credentials or
--kubeconfig, and with --leader-elect only the holder of the Lease
whorl-operator acts.`,
		Example: `  whorl operator --namespace whorl --leader-elect
  whorl operator --kubeconfig ~/.kube/config --namespace whorl --tls-cert op.pem --tls-key op-key.pem --tls-ca ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runOperator(cmd.Context(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", `kubeconfig file ("" = in-cluster, else $KUBECONFIG, else ~/.kube/config)`)
	f.StringVar(&o.namespace, "namespace", o.namespace, "namespace whose WhorlJobs this operator runs (default $POD_NAMESPACE, else whorl)")
	f.StringVar(&o.metricsAddr, "metrics-addr", "0", `controller metrics address HOST:PORT ("0" = off)`)
	f.StringVar(&o.healthAddr, "health-addr", ":8081", `/healthz and /readyz address HOST:PORT ("0" = off)`)
	f.BoolVar(&o.leaderElect, "leader-elect", false, "act only while holding the Lease whorl-operator (for several replicas)")
	cliflag.DurationRange(f, &o.poll, "poll", def.Poll, 100*time.Millisecond, 10*time.Minute, "how often a running job's status is read from the coordinators")
	cliflag.DurationRange(f, &o.queuePoll, "queue-poll", def.QueuePoll, time.Second, time.Hour, "how often a queued job looks at its queue again (besides every change of its group)")
	cliflag.DurationRange(f, &o.rpcTimeout, "timeout", 30*time.Second, time.Second, time.Hour, "give up a call to the coordinators after this long (leader elections are retried)")
	cliflag.Enum(f, &o.logFormat, "log-format", "text", []string{"text", "json"}, "log format")
	f.StringVar(&o.scratch, "scratch", "", `folder a job's files pass through, one at a time, on their way to spec.results ("" = the system's temporary folder)`)
	tlsFlags(f, &o.tls, "PEM client certificate")
	return cmd
}

// runOperator wires the controller and runs it until ctx ends.
func runOperator(ctx context.Context, logw io.Writer, o operatorOptions) error {
	log := newLogger(logw, o.logFormat, "info")
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	rest, err := kubeConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	tc, err := tlsfiles.Load(o.tls)
	if err != nil {
		return err
	}
	rc := operator.DefaultConfig()
	rc.Poll, rc.QueuePoll, rc.Scratch = o.poll, o.queuePoll, o.scratch
	log.Info("whorl operator", "namespace", o.namespace, "leader_elect", o.leaderElect, "tls", o.tls.Enabled())
	return operator.Run(ctx, operator.Options{
		Rest: rest, Namespace: o.namespace, MetricsAddr: o.metricsAddr, HealthAddr: o.healthAddr,
		LeaderElection: o.leaderElect, Reconciler: rc,
		Dial: func(addr string) (operator.Coordinator, error) {
			cfg := client.DefaultConfig()
			cfg.Addrs, cfg.RetryTimeout, cfg.TLS, cfg.Logger = []string{addr}, o.rpcTimeout, tc.Client, log
			return client.New(cfg)
		},
	})
}

// kubeConfig is the kube-apiserver's address and credentials: --kubeconfig,
// else in-cluster, else $KUBECONFIG or ~/.kube/config.
func kubeConfig(path string) (*rest.Config, error) {
	if path != "" {
		c, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
		}
		return c, nil
	}
	c, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes credentials (in-cluster, $KUBECONFIG or ~/.kube/config; or --kubeconfig): %w", err)
	}
	return c, nil
}
