package k8s

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/whorl-ml/whorl/job"
)

// want is what each overlay must deploy.
var want = map[string]struct {
	coordinators, workers int32
	image, preset         string
	tls                   bool   // mutual TLS with one cert-manager identity per pod (checkTLS)
	data                  string // the job's data.dir ("" the embedded set; checkS3 for s3://)
}{
	"kind":       {coordinators: 3, workers: 3, image: "whorl:dev", preset: job.PresetQuick},
	"production": {coordinators: 5, workers: 8, image: "ghcr.io/whorl-ml/whorl:latest", preset: job.PresetPaper, tls: true},
	"s3":         {coordinators: 3, workers: 3, image: "whorl:dev", preset: job.PresetQuick, data: "s3://whorl-datasets/embedded"},
	"node":       {coordinators: 3, workers: 2, image: "whorl:dev", preset: job.PresetQuick},
}

func TestStrictDecodeRejectsBadManifests(t *testing.T) {
	tests := []struct {
		name, raw, errHas string
	}{
		{"unknown field", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"replica":3}}`, "unknown field"},
		{"wrong type", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"replicas":"three"}}`, "replicas"},
		{"unknown kind", `{"apiVersion":"apps/v1","kind":"Deploymnet","metadata":{"name":"x"}}`, "Deploymnet"},
		{"probe typo", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":[{"name":"c","readinessProbe":{"grcp":{"port":1}}}]}}`, "grcp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeStrict([]byte(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("decodeStrict: got %v, want an error naming %q", err, tc.errHas)
			}
		})
	}
}

func TestOverlays(t *testing.T) {
	names := overlays(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("overlay %s has no expectations in manifest_test.go", name)
			}
			objs := renderOverlay(t, name)
			sts := find[*appsv1.StatefulSet](t, objs, "StatefulSet", "whorl-coordinator")
			dep := find[*appsv1.Deployment](t, objs, "Deployment", "whorl-worker")
			job := find[*batchv1.Job](t, objs, "Job", "whorl-submit")
			if got := *sts.Spec.Replicas; got != w.coordinators {
				t.Errorf("coordinators: %d replicas, want %d", got, w.coordinators)
			}
			if got := *dep.Spec.Replicas; got != w.workers {
				t.Errorf("workers: %d replicas, want %d", got, w.workers)
			}
			checkCoordinators(t, objs, sts)
			for _, p := range []struct {
				what string
				tpl  corev1.PodTemplateSpec
				long bool
			}{{"coordinator", sts.Spec.Template, true}, {"worker", dep.Spec.Template, true}, {"submit", job.Spec.Template, false}} {
				checkPod(t, p.what, p.tpl, p.long, w.image)
				checkTLS(t, p.what, p.tpl, w.tls)
			}
			checkServices(t, objs)
			checkNetworkPolicies(t, objs)
			checkJob(t, objs, w.preset, w.data)
			if strings.HasPrefix(w.data, "s3://") {
				checkS3(t, objs, w.data)
			}
		})
	}
}

// checkCoordinators checks the raft group's Service, volumes and budget.
func checkCoordinators(t *testing.T, objs []object, sts *appsv1.StatefulSet) {
	t.Helper()
	svc := find[*corev1.Service](t, objs, "Service", sts.Spec.ServiceName)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: clusterIP %q publishNotReadyAddresses %v, want a headless Service publishing not-ready pods",
			svc.Name, svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("StatefulSet podManagementPolicy %q: the raft group must start together (Parallel)", sts.Spec.PodManagementPolicy)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("StatefulSet has %d volumeClaimTemplates, want 1 for the raft data", len(sts.Spec.VolumeClaimTemplates))
	}
	claim := sts.Spec.VolumeClaimTemplates[0].Name
	if mountPath(sts.Spec.Template.Spec.Containers[0], claim) == "" {
		t.Errorf("the coordinator does not mount its claim %q", claim)
	}
	pdb := find[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", "whorl-coordinator")
	sel := labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels)
	if !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget selector %v does not select the coordinator pods", sel)
	}
	n := int(*sts.Spec.Replicas)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MinAvailable != nil {
		t.Fatalf("PodDisruptionBudget: want only maxUnavailable set")
	}
	down, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, n, true)
	if err != nil || down < 1 || n-down < n/2+1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v of %d coordinators: want >= 1 and a raft majority left", pdb.Spec.MaxUnavailable.String(), n)
	}
}

// checkPod checks the hardening, resources, probes and image of a pod.
func checkPod(t *testing.T, what string, tpl corev1.PodTemplateSpec, long bool, image string) {
	t.Helper()
	spec := tpl.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: the pod must run as a non-root user", what)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: whorl does not use the Kubernetes API; automountServiceAccountToken must be false", what)
	}
	for i, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		init := i < len(spec.InitContainers)
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s/%s: want a read-only root filesystem, no privilege escalation, all capabilities dropped", what, c.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("%s/%s: no %s request", what, c.Name, r)
			}
			if _, ok := c.Resources.Limits[r]; !ok {
				t.Errorf("%s/%s: no %s limit", what, c.Name, r)
			}
		}
		if c.Image != image {
			t.Errorf("%s/%s: image %q, want %q", what, c.Name, c.Image, image)
		}
		if long && !init {
			checkProbes(t, what, c)
			checkScrape(t, what, tpl.Annotations, c)
		}
	}
}

// checkProbes wants grpc.health.v1 probes on a port of the container: the
// kubelet's native gRPC probe in plaintext, and under mutual TLS (which the
// kubelet cannot speak) an exec probe running `/whorl health --addr
// ${POD_IP}:<port>` with the container's own certificate.
func checkProbes(t *testing.T, what string, c corev1.Container) {
	t.Helper()
	tls := envValue(c, "WHORL_TLS_CERT") != ""
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
	}{{"readiness", c.ReadinessProbe}, {"liveness", c.LivenessProbe}} {
		var port string
		switch {
		case p.probe == nil:
		case p.probe.GRPC != nil && !tls:
			port = strconv.Itoa(int(p.probe.GRPC.Port))
		case p.probe.Exec != nil && tls:
			port = healthProbePort(p.probe.Exec.Command)
		}
		if port == "" {
			t.Errorf("%s/%s: want a %s probe of grpc.health.v1 (the kubelet's gRPC probe in plaintext, `/whorl health --addr ${POD_IP}:PORT` under TLS; TLS %v): %+v",
				what, c.Name, p.kind, tls, p.probe)
			continue
		}
		if containerPort(c, port) == nil {
			t.Errorf("%s/%s: %s probe port %s is not a container port", what, c.Name, p.kind, port)
		}
	}
}

// healthProbePort is the port of an exec probe `/whorl health --addr
// ${POD_IP}:PORT ...` ("" for any other command).
func healthProbePort(cmd []string) string {
	if len(cmd) < 4 || cmd[0] != "/whorl" || cmd[1] != "health" || cmd[2] != "--addr" {
		return ""
	}
	port, ok := strings.CutPrefix(cmd[3], "${POD_IP}:")
	if !ok {
		return ""
	}
	return port
}

// envValue is the value of the container's variable name ("" when unset).
func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// checkScrape wants the Prometheus annotations to name the metrics port.
func checkScrape(t *testing.T, what string, annotations map[string]string, c corev1.Container) {
	t.Helper()
	p := containerPort(c, "metrics")
	if p == nil {
		t.Errorf("%s/%s: no container port named metrics", what, c.Name)
		return
	}
	if annotations["prometheus.io/scrape"] != "true" || annotations["prometheus.io/port"] != strconv.Itoa(int(p.ContainerPort)) {
		t.Errorf("%s: Prometheus annotations %v do not name the metrics port %d", what, annotations, p.ContainerPort)
	}
}

// checkServices wants every Service to select pods that have its target ports.
func checkServices(t *testing.T, objs []object) {
	t.Helper()
	for _, o := range objs {
		svc, ok := o.obj.(*corev1.Service)
		if !ok {
			continue
		}
		pods := selectPods(objs, labels.SelectorFromSet(svc.Spec.Selector))
		if len(pods) == 0 {
			t.Errorf("Service %s selects no pod template", svc.Name)
		}
		for _, tpl := range pods {
			for _, p := range svc.Spec.Ports {
				if containerPort(tpl.Spec.Containers[0], p.TargetPort.String()) == nil {
					t.Errorf("Service %s port %s: target %s is no port of %s", svc.Name, p.Name, p.TargetPort.String(), tpl.Labels["app.kubernetes.io/component"])
				}
			}
		}
	}
}

// checkNetworkPolicies wants every policy to select pods having its ports.
func checkNetworkPolicies(t *testing.T, objs []object) {
	t.Helper()
	n := 0
	for _, o := range objs {
		np, ok := o.obj.(*networkingv1.NetworkPolicy)
		if !ok {
			continue
		}
		n++
		pods := selectPods(objs, labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels))
		if len(pods) == 0 {
			t.Errorf("NetworkPolicy %s selects no pod template", np.Name)
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				for _, tpl := range pods {
					if containerPort(tpl.Spec.Containers[0], p.Port.String()) == nil {
						t.Errorf("NetworkPolicy %s: port %s is no port of the selected pods", np.Name, p.Port.String())
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no NetworkPolicy rendered")
	}
}

// checkJob wants the submitted job configuration to be valid: the preset
// as it is, but for its data.dir.
func checkJob(t *testing.T, objs []object, preset, data string) {
	t.Helper()
	cm := find[*corev1.ConfigMap](t, objs, "ConfigMap", configMapName(t, objs))
	c, err := job.Parse([]byte(cm.Data["job.json"]))
	if err != nil {
		t.Fatalf("ConfigMap %s job.json: %v", cm.Name, err)
	}
	if c.Preset != preset {
		t.Errorf("job.json preset %q, want %q", c.Preset, preset)
	}
	want, _ := job.Preset(preset)
	want.Data.Dir = data
	if !bytes.Equal(c.JSON(), want.JSON()) {
		t.Errorf("ConfigMap %s job.json is not the %s preset (a job on Kubernetes would differ from whorl run's):\n got %s\nwant %s",
			cm.Name, preset, c.JSON(), want.JSON())
	}
}

// configMapName is the generated (hash-suffixed) name of whorl-config.
func configMapName(t *testing.T, objs []object) string {
	t.Helper()
	for _, o := range objs {
		if o.kind == "ConfigMap" && strings.HasPrefix(o.name, "whorl-config") {
			return o.name
		}
	}
	t.Fatal("no whorl-config ConfigMap rendered")
	return ""
}

// selectPods returns the pod templates of workloads that sel matches.
func selectPods(objs []object, sel labels.Selector) []corev1.PodTemplateSpec {
	var out []corev1.PodTemplateSpec
	for _, o := range objs {
		var tpl corev1.PodTemplateSpec
		switch w := o.obj.(type) {
		case *appsv1.StatefulSet:
			tpl = w.Spec.Template
		case *appsv1.Deployment:
			tpl = w.Spec.Template
		case *batchv1.Job:
			tpl = w.Spec.Template
		default:
			continue
		}
		if sel.Matches(labels.Set(tpl.Labels)) {
			out = append(out, tpl)
		}
	}
	return out
}

// containerPort finds a port of c by name or number.
func containerPort(c corev1.Container, nameOrNumber string) *corev1.ContainerPort {
	for i, p := range c.Ports {
		if p.Name == nameOrNumber || strconv.Itoa(int(p.ContainerPort)) == nameOrNumber {
			return &c.Ports[i]
		}
	}
	return nil
}

// mountPath returns where c mounts the volume, or "".
func mountPath(c corev1.Container, volume string) string {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	return ""
}
