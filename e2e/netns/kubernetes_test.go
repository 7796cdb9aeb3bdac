package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/whorl-ml/whorl/experiment"
)

// k8sBase is the kustomize base, relative to this package.
const k8sBase = "../../k8s/base"

// TestKubernetesBase runs the pods of k8s/base as hosts: the coordinator
// StatefulSet's 3 pods, 2 worker pods and the submit Job's pod, each with
// exactly the arguments and environment of its manifest (downward API
// values filled in as the kubelet would), its volumes as directories, the
// ConfigMap's whorl.yaml, and an /etc/hosts that resolves the Service and
// pod DNS names like cluster DNS. The Job must end with the results: the
// deployment's wiring (peer discovery by DNS, ports, config keys, --wait)
// works with the real binary. Only the job is smaller than job.json.
func TestKubernetesBase(t *testing.T) {
	n := Require(t)
	bin, err := whorlBin()
	if err != nil {
		t.Fatal(err)
	}
	sts := decodeManifest[*appsv1.StatefulSet](t, "coordinator.yaml", "StatefulSet")
	dep := decodeManifest[*appsv1.Deployment](t, "worker.yaml", "Deployment")
	job := decodeManifest[*batchv1.Job](t, "submit-job.yaml", "Job")
	var pods []*pod
	for i := range int(*sts.Spec.Replicas) {
		pods = append(pods, &pod{name: fmt.Sprintf("%s-%d", sts.Name, i), tpl: sts.Spec.Template})
	}
	for i := range 2 {
		pods = append(pods, &pod{name: fmt.Sprintf("%s-%d", dep.Name, i), tpl: dep.Spec.Template})
	}
	pods = append(pods, &pod{name: job.Name, tpl: job.Spec.Template})
	// The pods' folders first: cleanups run last-registered first, so the
	// hosts (and the processes writing into these folders) are gone before
	// the folders are removed.
	dir := t.TempDir()
	hosts := addPodHosts(t, n, pods, int(*sts.Spec.Replicas), sts.Spec.ServiceName)
	begin := time.Now()
	for _, p := range pods {
		p.start(t, bin, dir, hosts)
	}
	submit := pods[len(pods)-1].proc
	if err := submit.Wait(4 * time.Minute); err != nil {
		t.Fatalf("the submit Job's pod (%s): %v", strings.Join(job.Spec.Template.Spec.Containers[0].Args, " "), err)
	}
	checkSubmitLog(t, submit.Tail(1000))
	for _, p := range pods[:len(pods)-1] {
		p.probe(t)
	}
	t.Logf("RESULT kubernetes-base: the submit Job ended with the report after %s", time.Since(begin).Round(time.Second))
}

// pod is one pod of the base run as a host.
type pod struct {
	name string
	tpl  corev1.PodTemplateSpec
	host *Host
	proc *Proc
}

// addPodHosts adds a host per pod and returns the /etc/hosts that cluster
// DNS stands for: the first coordinators pods by their names under the
// headless Service, the Service itself and the client Service whorl.
func addPodHosts(t *testing.T, n *Network, pods []*pod, coordinators int, service string) string {
	t.Helper()
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1 localhost\n")
	for i, p := range pods {
		h, err := n.AddHost(context.Background(), fmt.Sprintf("k%d", i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Remove(context.Background()) })
		p.host = h
		if i < coordinators {
			fmt.Fprintf(&hosts, "%s %s.%s\n%s %s\n%s whorl\n", h.Addr, p.name, service, h.Addr, service, h.Addr)
		}
	}
	return hosts.String()
}

// start runs the pod's container on its host with its manifest's
// arguments and environment.
func (p *pod) start(t *testing.T, bin, dir, hosts string) {
	t.Helper()
	if err := p.host.SetHosts(hosts); err != nil {
		t.Fatal(err)
	}
	args, env := podProcess(t, p.tpl, p.name, p.host.Addr.String(), filepath.Join(dir, p.name))
	log := filepath.Join(dir, p.name+".log")
	proc, err := p.host.Start(log, "env", append(append([]string{"-i"}, env...), append([]string{bin}, args...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	p.proc = proc
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s log tail:\n%s", p.name, tailFile(log, logLines()))
		}
	})
}

// probe runs the container's readiness and liveness probes as the kubelet
// does for a gRPC probe: grpc.health.v1 Check of the probe's service on the
// pod's address and port, which must answer SERVING.
func (p *pod) probe(t *testing.T) {
	t.Helper()
	c := p.tpl.Spec.Containers[0]
	for kind, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if pr == nil || pr.GRPC == nil {
			t.Errorf("%s: no gRPC %s probe", p.name, kind)
			continue
		}
		service := ""
		if pr.GRPC.Service != nil {
			service = *pr.GRPC.Service
		}
		addr := net.JoinHostPort(p.host.Addr.String(), fmt.Sprint(pr.GRPC.Port))
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		cancel()
		conn.Close()
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%s: %s probe (grpc.health.v1 service %q on %s): %v %v", p.name, kind, service, addr, res.GetStatus(), err)
		}
	}
}

// checkSubmitLog wants the submit Job's log to end with the report and to
// show both worker pods training.
func checkSubmitLog(t *testing.T, out string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^report: (\{.*\})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the submit Job's log has no report:\n%s", out)
	}
	var rep experiment.Report
	if err := json.Unmarshal([]byte(m[1]), &rep); err != nil {
		t.Fatalf("the submit Job's report: %v", err)
	}
	if rep.Dataset.Train == 0 {
		t.Errorf("the submit Job's report has no dataset: %.300s", m[1])
	}
	// Both worker pods trained (distinct ids: the pod names).
	if !regexp.MustCompile(`(?m)pretraining .* workers 2$`).MatchString(out) {
		t.Errorf("the submit Job's progress never shows the 2 worker pods training:\n%s", out)
	}
}

// decodeManifest decodes the one object of kind in a base file strictly.
func decodeManifest[T any](t *testing.T, file, kind string) T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8sBase, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil || meta.Kind != kind {
			continue
		}
		var out T
		if err := yaml.UnmarshalStrict(doc, &out); err != nil {
			t.Fatalf("%s: %s: %v", file, kind, err)
		}
		return out
	}
	t.Fatalf("%s has no %s", file, kind)
	var zero T
	return zero
}

// podProcess returns the arguments and environment of a pod's container as
// the kubelet would run it on a host with address ip, its volumes mapped
// under root: each emptyDir and claim a directory, the ConfigMap a copy of
// whorl.yaml and a small job.json, with paths into mounts rewritten.
func podProcess(t *testing.T, tpl corev1.PodTemplateSpec, name, ip, root string) (args, env []string) {
	t.Helper()
	c := tpl.Spec.Containers[0]
	mounts := map[string]string{} // mount path -> directory
	for _, m := range c.VolumeMounts {
		d := filepath.Join(root, m.Name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		mounts[path.Clean(m.MountPath)] = d
	}
	remap := func(v string) string {
		for mp, d := range mounts {
			if v == mp || strings.HasPrefix(v, mp+"/") {
				return d + strings.TrimPrefix(v, mp)
			}
		}
		return v
	}
	for _, m := range c.VolumeMounts {
		for _, v := range tpl.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				writeConfigMap(t, mounts[path.Clean(m.MountPath)], remap)
			}
		}
	}
	vars := map[string]string{}
	for _, e := range c.Env {
		val := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			val = map[string]string{"metadata.name": name, "status.podIP": ip, "metadata.namespace": "whorl"}[e.ValueFrom.FieldRef.FieldPath]
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			q := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
			val = fmt.Sprint(q.Value())
		default:
			val = regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(val, func(m string) string { return vars[m[2:len(m)-1]] })
		}
		vars[e.Name] = val
		env = append(env, e.Name+"="+remap(val))
	}
	for _, a := range c.Args {
		args = append(args, remap(a))
	}
	return args, env
}

// writeConfigMap writes the base's whorl.yaml with its paths mapped by
// remap, and the small e2e job as job.json, into dir.
func writeConfigMap(t *testing.T, dir string, remap func(string) string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8sBase, "whorl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range cfg {
		if s, ok := v.(string); ok {
			cfg[k] = remap(s)
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "whorl.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "job.json"), e2eJob(t).JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
}
