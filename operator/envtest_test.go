package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/whorl-ml/whorl/coordinator"
	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/operator/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// kubeBinDir finds the kube-apiserver and kubectl that
// k8s/verify/build-apiserver.sh builds: $WHORL_KUBE_BIN, else its cache.
func kubeBinDir() string {
	if d := os.Getenv("WHORL_KUBE_BIN"); d != "" {
		return d
	}
	for _, root := range []string{"/var/cache/whorl", filepath.Join(os.Getenv("HOME"), ".cache/whorl")} {
		d := filepath.Join(root, "kubernetes-v1.34.4", "bin")
		if _, err := os.Stat(filepath.Join(d, "kube-apiserver")); err == nil {
			return d
		}
	}
	return ""
}

// envAssets returns a folder holding kube-apiserver, kubectl and etcd for
// envtest, or skips (fails with WHORL_ENVTEST=require) naming what is
// missing.
func envAssets(t *testing.T) string {
	t.Helper()
	missing := func(what string) string {
		msg := what + ": the envtest suite needs a kube-apiserver and kubectl (k8s/verify/build-apiserver.sh builds them; or WHORL_KUBE_BIN=DIR) and etcd (apt-get install etcd-server)"
		if os.Getenv("WHORL_ENVTEST") == "require" {
			t.Fatal(msg)
		}
		t.Skip(msg)
		return ""
	}
	bin := kubeBinDir()
	if bin == "" {
		return missing("no kube-apiserver found")
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		return missing("no etcd on PATH")
	}
	dir := t.TempDir()
	for name, src := range map[string]string{
		"kube-apiserver": filepath.Join(bin, "kube-apiserver"), "kubectl": filepath.Join(bin, "kubectl"), "etcd": etcd,
	} {
		if _, err := os.Stat(src); err != nil {
			return missing(err.Error())
		}
		if err := os.Symlink(src, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gatedPhases are coordinator Phases whose baseline waits for a release
// (or for its context, a cancel), so the tests see a job running.
type gatedPhases struct {
	release chan struct{}
	mu      sync.Mutex
	entered int
	// files are the result files every job lists (ResultLister).
	files map[string]string
}

// ResultFiles lists the suite's result files as every job's.
func (p *gatedPhases) ResultFiles(_, _ []byte) (map[string]string, error) { return p.files, nil }

func (p *gatedPhases) Prepare(context.Context, []byte) (job.Prepared, error) {
	ids := make([]int, 16)
	for i := range ids {
		ids[i] = i
	}
	return job.Prepared{TrainIDs: ids, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}, ManifestDigest: "manifest-test"}, nil
}

func (p *gatedPhases) Baseline(ctx context.Context, _ []byte) ([]byte, error) {
	p.mu.Lock()
	p.entered++
	p.mu.Unlock()
	select {
	case <-p.release:
		return []byte(`{"test_accuracy":0.635}`), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *gatedPhases) FineTune(context.Context, []byte, []byte, []byte, []job.EpochStat) ([]byte, error) {
	return []byte(`{"baseline":{"test_accuracy":0.635},"finetune":{"test_accuracy":0.67},"gain":0.035,"pretext":{"test_rotation_accuracy":0.739}}`), nil
}

// suite is a kube-apiserver with the CRD, a coordinator, and the operator.
type suite struct {
	t       *testing.T
	env     *envtest.Environment
	c       crclient.Client
	ns      string
	phases  *gatedPhases
	cluster *coordinator.LocalCluster
	coord   *coordClient
}

// coordClient is the test's view of the coordinators the operator dials.
type coordClient struct{ Coordinator }

func (coordClient) Close() error { return nil } // the suite closes it

func startSuite(t *testing.T) *suite {
	assets := envAssets(t)
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(io.Discard, nil)))
	s := &suite{t: t, ns: "whorl", phases: &gatedPhases{release: make(chan struct{}), files: resultFiles(t)}}
	s.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{crdFile},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := s.env.Start()
	if err != nil {
		_ = s.env.Stop() // what it started before the failure (a CRD refused, say)
		t.Fatalf("start envtest (kube-apiserver and etcd): %v", err)
	}
	t.Cleanup(func() {
		if err := s.env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	if s.c, err = crclient.New(cfg, crclient.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	s.startCoordinator()
	s.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}})
	s.create(workerDeploymentObject(s.ns))
	s.startOperator(cfg)
	return s
}

// startCoordinator runs one real coordinator (raft, gRPC) with the gated
// phases.
func (s *suite) startCoordinator() {
	t := s.t
	base := coordinator.DefaultConfig()
	base.RaftHeartbeatTimeout, base.RaftElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
	base.Phases = s.phases
	base.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	lc, err := coordinator.StartLocal(t.TempDir(), 1, base)
	if err != nil {
		t.Fatal(err)
	}
	s.cluster = lc
	cl, err := lc.Client(base.Logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.coord = &coordClient{cl}
	t.Cleanup(func() {
		_ = cl.Close()
		if err := lc.Close(); err != nil {
			t.Errorf("close coordinators: %v", err)
		}
	})
}

// startOperator runs the operator (Run, as whorl operator does) until the
// test ends. Every address dials the suite's coordinators.
func (s *suite) startOperator(cfg *rest.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	rc := DefaultConfig()
	rc.Poll, rc.QueuePoll = 200*time.Millisecond, 2*time.Second
	go func() {
		done <- Run(ctx, Options{
			Rest: cfg, Namespace: s.ns, MetricsAddr: "0", HealthAddr: "0", Reconciler: rc,
			ControllerName: strings.ToLower(s.t.Name()),
			Dial: func(addr string) (Coordinator, error) {
				if addr != "whorl-coordinator.whorl.svc:7401" {
					return nil, fmt.Errorf("test dialer: unexpected address %s", addr)
				}
				return s.coord, nil
			},
		})
	}()
	s.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("operator: %v", err)
		}
	})
}

// workerDeploymentObject is a worker Deployment at zero replicas (envtest
// runs no controllers: its status is the tests' to set).
func workerDeploymentObject(ns string) *appsv1.Deployment {
	labels := map[string]string{"app": "whorl-worker"}
	zero := int32(0)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DefaultWorkerDeployment},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "whorl"}}},
			},
		},
	}
}

func (s *suite) create(o crclient.Object) {
	s.t.Helper()
	if err := s.c.Create(context.Background(), o); err != nil {
		s.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

// newJob returns a WhorlJob of the suite's namespace with no pretraining
// (the gated phases run the rest) and minWorkers 0.
func (s *suite) newJob(name string) *v1alpha1.WhorlJob {
	return &v1alpha1.WhorlJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
		Spec: v1alpha1.WhorlJobSpec{
			Job:     &apiextensionsv1.JSON{Raw: []byte(`{"pretrain":{"epochs":0},"seed":` + fmt.Sprint(len(name)) + `}`)},
			Workers: v1alpha1.WorkerRange{Min: ptr[int32](0), Max: 3},
		},
	}
}

// get reads a WhorlJob.
func (s *suite) get(name string) (*v1alpha1.WhorlJob, error) {
	var wj v1alpha1.WhorlJob
	err := s.c.Get(context.Background(), crclient.ObjectKey{Namespace: s.ns, Name: name}, &wj)
	return &wj, err
}

// waitFor polls a WhorlJob until cond holds.
func (s *suite) waitFor(name, what string, cond func(*v1alpha1.WhorlJob) bool) *v1alpha1.WhorlJob {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *v1alpha1.WhorlJob
	for time.Now().Before(deadline) {
		wj, err := s.get(name)
		if err == nil && cond(wj) {
			return wj
		}
		last = wj
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last.Status, "", "  ")
	s.t.Fatalf("WhorlJob %s: %s: not within 30 s; status %s", name, what, b)
	return nil
}

func phaseIs(p v1alpha1.Phase) func(*v1alpha1.WhorlJob) bool {
	return func(wj *v1alpha1.WhorlJob) bool { return wj.Status.Phase == p }
}

// replicas reads the worker Deployment's replicas.
func (s *suite) replicas() int32 {
	var d appsv1.Deployment
	if err := s.c.Get(context.Background(), crclient.ObjectKey{Namespace: s.ns, Name: DefaultWorkerDeployment}, &d); err != nil {
		s.t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// scaleWorkers sets the worker Deployment's replicas, as kubectl scale.
func (s *suite) scaleWorkers(n int32) {
	s.t.Helper()
	var d appsv1.Deployment
	if err := s.c.Get(context.Background(), crclient.ObjectKey{Namespace: s.ns, Name: DefaultWorkerDeployment}, &d); err != nil {
		s.t.Fatal(err)
	}
	patch := crclient.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = &n
	if err := s.c.Patch(context.Background(), &d, patch); err != nil {
		s.t.Fatal(err)
	}
}

// waitReplicas waits for the worker Deployment's replicas.
func (s *suite) waitReplicas(want int32) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s.replicas() == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("worker Deployment replicas = %d, want %d", s.replicas(), want)
}

// events lists the reasons of the WhorlJob's Events.
func (s *suite) events(name string) []string {
	var list eventsv1.EventList
	if err := s.c.List(context.Background(), &list, crclient.InNamespace(s.ns)); err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

// coordinatorPhase is the coordinators' phase and failure reason of a job.
func (s *suite) coordinatorPhase(id string) (string, string) {
	r, err := s.coord.FetchResults(context.Background(), id)
	if err != nil {
		s.t.Fatalf("FetchResults %s: %v", id, err)
	}
	return r.GetPhase().Label(), r.GetFailureReason()
}

// TestWhorlJobQueue runs two WhorlJobs on one coordinator group: the
// second waits in the queue while the first runs, the workers are scaled
// to the running job's maximum, each ends Succeeded with the report's
// figures, the second after the first, and the workers go back to zero.
func TestWhorlJobQueue(t *testing.T) {
	s := startSuite(t)
	a := s.newJob("first")
	s.create(a)
	running := s.waitFor("first", "runs its baseline", phaseIs(v1alpha1.PhaseBaseline))
	if running.Status.JobID == "" || running.Status.Leader != "c0" || running.Status.StartTime == nil {
		t.Fatalf("running status: %+v", running.Status)
	}
	time.Sleep(1100 * time.Millisecond) // creation times are to the second
	s.create(s.newJob("second"))
	q := s.waitFor("second", "queued", phaseIs(v1alpha1.PhaseQueued))
	if q.Status.QueuePosition != 1 || !strings.Contains(q.Status.Message, "first") {
		t.Fatalf("queued status: position %d, message %q; want 1, naming first", q.Status.QueuePosition, q.Status.Message)
	}
	s.waitReplicas(3)
	s.scaleWorkers(2) // by hand, within the range: kept
	time.Sleep(time.Second)
	if got := s.replicas(); got != 2 {
		t.Fatalf("workers scaled by hand to 2 within the range [0, 3]: the operator set %d", got)
	}
	s.scaleWorkers(7) // beyond the range: back to its max
	s.waitReplicas(3)
	s.phases.release <- struct{}{}
	done := s.waitFor("first", "succeeds", phaseIs(v1alpha1.PhaseSucceeded))
	want := v1alpha1.Result{Baseline: "63.5%", FineTuned: "67.0%", Gain: "+3.5", Rotation: "73.9%"}
	if done.Status.Result == nil || *done.Status.Result != want || done.Status.CompletionTime == nil {
		t.Fatalf("result %+v, want %+v", done.Status.Result, want)
	}
	if !strings.HasPrefix(done.Status.Fetch, "whorl fetch --coordinator whorl-coordinator.whorl.svc:7401 --job "+done.Status.JobID) {
		t.Fatalf("fetch = %q", done.Status.Fetch)
	}
	s.waitFor("second", "runs after the first", phaseIs(v1alpha1.PhaseBaseline))
	s.phases.release <- struct{}{}
	second := s.waitFor("second", "succeeds", phaseIs(v1alpha1.PhaseSucceeded))
	if second.Status.JobID == done.Status.JobID || !second.Status.StartTime.After(done.Status.CompletionTime.Time.Add(-time.Second)) {
		t.Fatalf("second job %s started %v, first %s ended %v", second.Status.JobID, second.Status.StartTime, done.Status.JobID, done.Status.CompletionTime)
	}
	s.waitReplicas(0)
	ev := strings.Join(s.events("first"), " ")
	for _, reason := range []string{"Submitted", "Baseline", "Succeeded"} {
		if !strings.Contains(ev, reason) {
			t.Errorf("events of first: %s; want %s among them", ev, reason)
		}
	}
	out, err := s.kubectl("get", "whorljobs", "-n", s.ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"PHASE", "EPOCH", "PROGRESS", "ETA", "WORKERS", "GAIN", "Succeeded", "+3.5"} {
		if !strings.Contains(out, col) {
			t.Errorf("kubectl get whorljobs lacks %q:\n%s", col, out)
		}
	}
}

// kubectl runs the suite's kubectl against its kube-apiserver.
func (s *suite) kubectl(args ...string) (string, error) {
	stdout, stderr, err := s.env.ControlPlane.KubeCtl().Run(args...)
	if err != nil {
		b, _ := io.ReadAll(stderr)
		return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, b)
	}
	b, _ := io.ReadAll(stdout)
	return string(b), nil
}

// TestWhorlJobDeleteCancels deletes a running WhorlJob: the operator
// cancels its job on the coordinators before the object goes, and the
// workers are scaled to zero.
func TestWhorlJobDeleteCancels(t *testing.T) {
	s := startSuite(t)
	s.create(s.newJob("doomed"))
	wj := s.waitFor("doomed", "runs", phaseIs(v1alpha1.PhaseBaseline))
	s.waitReplicas(3)
	if err := s.c.Delete(context.Background(), wj); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := s.get("doomed")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted WhorlJob is still there after 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	phase, reason := s.coordinatorPhase(wj.Status.JobID)
	if phase != "failed" || !strings.HasPrefix(reason, "cancelled by") {
		t.Fatalf("job %s on the coordinators: %s (%s), want failed: cancelled by ...", wj.Status.JobID, phase, reason)
	}
	s.waitReplicas(0)
}

// TestWhorlJobSuspend: a suspended WhorlJob is not submitted; resumed, it
// runs; suspended while running, its job is cancelled and it waits again;
// its time to live deletes it once finished.
func TestWhorlJobSuspend(t *testing.T) {
	s := startSuite(t)
	wj := s.newJob("held")
	wj.Spec.Suspend = true
	ttl := int32(1)
	wj.Spec.TTLSecondsAfterFinished = &ttl
	s.create(wj)
	held := s.waitFor("held", "suspended", phaseIs(v1alpha1.PhaseSuspended))
	if held.Status.JobID != "" || s.replicas() != 0 {
		t.Fatalf("a suspended job was submitted (%q) or scaled workers (%d)", held.Status.JobID, s.replicas())
	}
	s.setSuspend("held", false)
	first := s.waitFor("held", "runs once resumed", phaseIs(v1alpha1.PhaseBaseline))
	s.setSuspend("held", true)
	s.waitFor("held", "suspended again", func(wj *v1alpha1.WhorlJob) bool {
		return wj.Status.Phase == v1alpha1.PhaseSuspended && wj.Status.JobID == ""
	})
	if phase, reason := s.coordinatorPhase(first.Status.JobID); phase != "failed" || !strings.HasPrefix(reason, "cancelled by") {
		t.Fatalf("suspending did not cancel job %s: %s (%s)", first.Status.JobID, phase, reason)
	}
	s.setSuspend("held", false)
	again := s.waitFor("held", "runs again", phaseIs(v1alpha1.PhaseBaseline))
	if again.Status.JobID == first.Status.JobID {
		t.Fatal("resumed job kept the cancelled job's id")
	}
	s.phases.release <- struct{}{}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := s.get("held"); err != nil {
			break // deleted by its time to live
		}
		if time.Now().After(deadline) {
			t.Fatal("ttlSecondsAfterFinished 1 did not delete the finished WhorlJob within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setSuspend sets a WhorlJob's spec.suspend.
func (s *suite) setSuspend(name string, v bool) {
	s.t.Helper()
	wj, err := s.get(name)
	if err != nil {
		s.t.Fatal(err)
	}
	patch := crclient.MergeFrom(wj.DeepCopy())
	wj.Spec.Suspend = v
	if err := s.c.Patch(context.Background(), wj, patch); err != nil {
		s.t.Fatal(err)
	}
}

// TestWhorlJobValidation: the schema refuses a wrong type in spec.job and
// workers.max below workers.min at the API; the operator refuses a value
// out of job.Validate's bounds, naming the key, and fails the WhorlJob
// without submitting it.
func TestWhorlJobValidation(t *testing.T) {
	s := startSuite(t)
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"wrong-type", `{"job":{"pretrain":{"epochs":"ten"}}}`, "spec.job.pretrain.epochs"},
		{"max-below-min", `{"workers":{"min":3,"max":2}}`, "workers.max must be at least workers.min"},
		{"bad-preset", `{"preset":"huge"}`, "spec.preset"},
		{"bad-results", `{"results":{"url":"http://example.com/results"}}`, "spec.results.url"},
		{"no-results-url", `{"results":{}}`, "spec.results.url"},
	} {
		u := &unstructured.Unstructured{}
		var spec map[string]any
		if err := json.Unmarshal([]byte(tc.spec), &spec); err != nil {
			t.Fatal(err)
		}
		u.SetAPIVersion(v1alpha1.GroupVersion.String())
		u.SetKind(v1alpha1.Kind)
		u.SetNamespace(s.ns)
		u.SetName(tc.name)
		u.Object["spec"] = spec
		err := s.c.Create(context.Background(), u)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: create = %v, want a refusal naming %q", tc.name, err, tc.want)
		}
	}
	example := readExample(t)
	example.Spec.Suspend = true // accepted by the API and the operator, not run here
	s.create(example)
	if held := s.waitFor(example.Name, "suspended", phaseIs(v1alpha1.PhaseSuspended)); held.Status.JobID != "" {
		t.Fatalf("example: %+v", held.Status)
	}
	bad := s.newJob("out-of-range")
	bad.Spec.Job.Raw = []byte(`{"data":{"image_size":4}}`)
	s.create(bad)
	failed := s.waitFor("out-of-range", "fails", phaseIs(v1alpha1.PhaseFailed))
	if failed.Status.JobID != "" || !strings.Contains(failed.Status.Message, "data.image_size") {
		t.Fatalf("status: job %q, message %q; want no job and a message naming data.image_size", failed.Status.JobID, failed.Status.Message)
	}
	if c := findCondition(failed, v1alpha1.ConditionFailed); c == nil || c.Reason != "InvalidJob" {
		t.Fatalf("Failed condition = %+v, want reason InvalidJob", c)
	}
}

// readExample decodes k8s/examples/whorljob.yaml strictly.
func readExample(t *testing.T) *v1alpha1.WhorlJob {
	t.Helper()
	b, err := os.ReadFile("../k8s/examples/whorljob.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var wj v1alpha1.WhorlJob
	if err := yaml.UnmarshalStrict(b, &wj); err != nil {
		t.Fatalf("k8s/examples/whorljob.yaml: %v", err)
	}
	if _, err := JobConfig(wj.Spec); err != nil {
		t.Fatalf("k8s/examples/whorljob.yaml: %v", err)
	}
	return &wj
}

func findCondition(wj *v1alpha1.WhorlJob, typ string) *metav1.Condition {
	for i := range wj.Status.Conditions {
		if wj.Status.Conditions[i].Type == typ {
			return &wj.Status.Conditions[i]
		}
	}
	return nil
}
