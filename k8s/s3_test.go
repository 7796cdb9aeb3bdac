package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// s3Image is the SeaweedFS image `make image-weed` builds.
const s3Image = "whorl-weed:dev"

// s3Identity is one identity of weed's -s3.config file.
type s3Identity struct {
	Name        string `json:"name"`
	Credentials []struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	} `json:"credentials"`
	Actions []string `json:"actions"`
}

// checkS3 checks an overlay whose job reads data (an s3:// URL) from the
// SeaweedFS server it deploys: the server hardened like the whorl pods,
// its data on its claim, its identities from a Secret, only S3 beyond its
// loopback; the Service, the endpoint the pods get and the flags agree;
// the coordinators and workers read with a read-only identity; the submit
// Job's init container packs the embedded set to exactly the job's
// data.dir with the writer identity; and the NetworkPolicy admits those
// pods, and no other, to the S3 port.
func checkS3(t *testing.T, objs []object, data string) {
	t.Helper()
	srv := find[*appsv1.Deployment](t, objs, "Deployment", "whorl-s3")
	tpl := srv.Spec.Template
	checkPod(t, "s3", tpl, false, s3Image)
	weed := tpl.Spec.Containers[0]
	flags := weedFlags(weed.Args)
	port := containerPort(weed, "s3")
	if port == nil || flags["s3.port"] != fmt.Sprint(port.ContainerPort) || flags["ip.bind"] != "127.0.0.1" || flags["s3.ip.bind"] != "0.0.0.0" {
		t.Errorf("s3: args %v: want -s3.port the container port s3, and only S3 bound beyond loopback", weed.Args)
	}
	for _, p := range []*corev1.Probe{weed.ReadinessProbe, weed.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "s3" {
			t.Errorf("s3: want readiness and liveness probes of GET /healthz on port s3, got %+v", p)
		}
	}
	vol := volumeNamed(tpl.Spec, "data")
	if vol == nil || vol.PersistentVolumeClaim == nil || flags["dir"] != mountPath(weed, "data") {
		t.Errorf("s3: -dir=%s: want the mount of a volume claim named data", flags["dir"])
	} else {
		find[*corev1.PersistentVolumeClaim](t, objs, "PersistentVolumeClaim", vol.PersistentVolumeClaim.ClaimName)
	}
	cfg := volumeNamed(tpl.Spec, "config")
	if cfg == nil || cfg.Secret == nil || flags["s3.config"] != mountPath(weed, "config")+"/s3.json" {
		t.Fatalf("s3: -s3.config=%s: want s3.json of a Secret volume named config", flags["s3.config"])
	}
	var ids struct {
		Identities []s3Identity `json:"identities"`
	}
	if err := json.Unmarshal(find[*corev1.Secret](t, objs, "Secret", cfg.Secret.SecretName).Data["s3.json"], &ids); err != nil {
		t.Fatalf("s3: the server's identities: %v", err)
	}
	svc := find[*corev1.Service](t, objs, "Service", "whorl-s3")
	reader := generatedSecret(t, objs, "whorl-s3")
	writer := generatedSecret(t, objs, "whorl-s3-writer")
	if got, want := string(reader.Data["AWS_ENDPOINT_URL_S3"]), fmt.Sprintf("http://%s:%d", svc.Name, svc.Spec.Ports[0].Port); got != want {
		t.Errorf("Secret %s: AWS_ENDPOINT_URL_S3=%q, want the Service %q", reader.Name, got, want)
	}
	if a := identityActions(ids.Identities, reader); a == nil || slices.ContainsFunc(a, func(s string) bool { return s != "Read" && s != "List" }) {
		t.Errorf("Secret %s: the identity's actions %v: want an identity of the server that may only Read and List", reader.Name, a)
	}
	if a := identityActions(ids.Identities, writer); !slices.Contains(a, "Write") || !slices.Contains(a, "Admin") {
		t.Errorf("Secret %s: the identity's actions %v: want an identity that may Write and make the bucket (Admin)", writer.Name, a)
	}
	checkS3Readers(t, objs, reader.Name, writer.Name, data)
	checkS3Policy(t, objs, tpl)
}

// checkS3Readers wants the coordinators and workers to take the store's
// variables from the reader Secret, and the submit Job to pack first.
func checkS3Readers(t *testing.T, objs []object, reader, writer, data string) {
	t.Helper()
	fromSecrets := func(c corev1.Container) []string {
		var out []string
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				out = append(out, e.SecretRef.Name)
			}
		}
		return out
	}
	sts := find[*appsv1.StatefulSet](t, objs, "StatefulSet", "whorl-coordinator")
	dep := find[*appsv1.Deployment](t, objs, "Deployment", "whorl-worker")
	for _, c := range []corev1.Container{sts.Spec.Template.Spec.Containers[0], dep.Spec.Template.Spec.Containers[0]} {
		if got := fromSecrets(c); !slices.Equal(got, []string{reader}) {
			t.Errorf("%s: envFrom Secrets %v, want [%s] (the store's endpoint and read-only identity)", c.Name, got, reader)
		}
	}
	pod := find[*batchv1.Job](t, objs, "Job", "whorl-submit").Spec.Template.Spec
	if len(pod.InitContainers) != 1 {
		t.Fatalf("whorl-submit: %d init containers, want the pack step", len(pod.InitContainers))
	}
	pack := pod.InitContainers[0]
	if got := fromSecrets(pack); !slices.Equal(got, []string{reader, writer}) {
		t.Errorf("pack: envFrom Secrets %v, want [%s %s] (the writer's identity last, so it wins)", got, reader, writer)
	}
	if pack.Image != pod.Containers[0].Image {
		t.Errorf("pack: image %q, submit's %q", pack.Image, pod.Containers[0].Image)
	}
	vals := packFlags(t, pack.Args)
	if vals["out"] != data || vals["embedded"] != "true" || vals["wait"] == "" {
		t.Errorf("pack: args %v: want --embedded --out %s (the job's data.dir) and --wait", pack.Args, data)
	}
}

// checkS3Policy wants a NetworkPolicy selecting the server to admit to its
// S3 port exactly the coordinator, worker and submit pods.
func checkS3Policy(t *testing.T, objs []object, server corev1.PodTemplateSpec) {
	t.Helper()
	np := find[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy", "whorl-s3")
	if !labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(labels.Set(server.Labels)) {
		t.Fatalf("NetworkPolicy whorl-s3 does not select the server's pods")
	}
	for _, w := range workloads(objs) {
		admitted := false
		for _, rule := range np.Spec.Ingress {
			if !slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port.String() == "s3" }) {
				continue
			}
			for _, peer := range rule.From {
				sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
				if err != nil {
					t.Fatal(err)
				}
				admitted = admitted || peer.PodSelector != nil && sel.Matches(labels.Set(w.pod.Labels))
			}
		}
		want := slices.Contains([]string{"coordinator", "worker", "submit"}, w.pod.Labels["app.kubernetes.io/component"])
		if admitted != want {
			t.Errorf("NetworkPolicy whorl-s3: %s admitted to the S3 port: %v, want %v", w.what, admitted, want)
		}
	}
}

// weedFlags maps weed's -name=value arguments after the command.
func weedFlags(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args[1:] {
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if !ok {
			v = "true"
		}
		out[k] = v
	}
	return out
}

// packFlags checks args (data pack --flag ...) against `whorl data pack`'s
// flags and returns their values.
func packFlags(t *testing.T, args []string) map[string]string {
	t.Helper()
	if len(args) < 2 || args[0] != "data" || args[1] != "pack" {
		t.Fatalf("pack: args %v, want `data pack ...`", args)
	}
	flags, ok := helpFlags(t, "data pack")
	if !ok {
		t.Skip("this tree's binary has no `whorl data pack`")
	}
	out := map[string]string{}
	for i := 2; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		f, known := flags[name]
		switch {
		case !ok || !known:
			t.Errorf("pack: argument %q is no flag of `whorl data pack`", args[i])
		case f.typ == "":
			out[name] = "true"
		case i+1 < len(args):
			out[name] = args[i+1]
			i++
		}
	}
	return out
}

// volumeNamed is the pod's volume of that name, or nil.
func volumeNamed(spec corev1.PodSpec, name string) *corev1.Volume {
	for i, v := range spec.Volumes {
		if v.Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// generatedSecret finds the Secret kustomize generated as name (name-<hash>).
func generatedSecret(t *testing.T, objs []object, name string) *corev1.Secret {
	t.Helper()
	re := regexp.MustCompile("^" + regexp.QuoteMeta(name) + "-[a-z0-9]{10}$")
	for _, o := range objs {
		if s, ok := o.obj.(*corev1.Secret); ok && re.MatchString(s.Name) {
			return s
		}
	}
	t.Fatalf("no generated Secret %s", name)
	return nil
}

// identityActions is the actions of the identity whose keys the Secret
// holds (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), or nil.
func identityActions(ids []s3Identity, s *corev1.Secret) []string {
	for _, id := range ids {
		for _, c := range id.Credentials {
			if c.AccessKey == string(s.Data["AWS_ACCESS_KEY_ID"]) && c.SecretKey == string(s.Data["AWS_SECRET_ACCESS_KEY"]) {
				return id.Actions
			}
		}
	}
	return nil
}

// readEnvFile reads a KEY=value file as compose and kustomize do (# lines
// are comments).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range readLines(t, path) {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=value", path, l)
		}
		out[k] = v
	}
	return out
}

// TestComposeS3Profile keeps docker-compose.yaml's s3 profile in step with
// k8s/overlays/s3: the profile's services exist only in it (a plain
// `docker-compose up` starts what it did); the SeaweedFS service runs the
// Deployment's image flags with the same identities file, hardened, under
// the Service's name; the coordinators and workers read the same
// variables from the same file as the overlay's Secret; the pack one-shot
// runs the init container's command with the writer identity last; and the
// profile's submit sends the overlay's job, after the pack, as the submit
// client.
func TestComposeS3Profile(t *testing.T) {
	svcs := readCompose(t)
	objs := renderOverlay(t, "s3")
	const dir = "./k8s/overlays/s3/"
	profile := map[string]bool{"whorl-s3": true, "s3-pack": true, "s3-submit": true}
	for name, s := range svcs {
		if want := []string(nil); profile[name] {
			want = []string{"s3"}
			if !slices.Equal(s.Profiles, want) {
				t.Errorf("compose %s: profiles %v, want %v", name, s.Profiles, want)
			}
		} else if len(s.Profiles) != 0 {
			t.Errorf("compose %s: profiles %v: a service of the default cluster must start without one", name, s.Profiles)
		}
	}
	srv := find[*appsv1.Deployment](t, objs, "Deployment", "whorl-s3").Spec.Template
	weed, s := srv.Spec.Containers[0], svcs["whorl-s3"]
	if !slices.Equal(s.Command, weed.Args) {
		t.Errorf("compose whorl-s3: command %v, the overlay's args %v", s.Command, weed.Args)
	}
	if s.Hostname != "whorl-s3" || !strings.Contains(s.Image, s3Image) {
		t.Errorf("compose whorl-s3: hostname %q image %q: want the Service's name whorl-s3 and %s", s.Hostname, s.Image, s3Image)
	}
	conf := weedFlags(weed.Args)["s3.config"]
	if !slices.Contains(s.Volumes, dir+"s3.json:"+conf+":ro") || !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+mountPath(weed, "data")) }) {
		t.Errorf("compose whorl-s3: volumes %v: want %ss3.json at %s (read-only) and a volume at %s", s.Volumes, dir, conf, mountPath(weed, "data"))
	}
	sc := srv.Spec.SecurityContext
	if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") ||
		s.User != fmt.Sprintf("%d:%d", *sc.RunAsUser, *sc.RunAsGroup) {
		t.Errorf("compose whorl-s3: read_only %v cap_drop %v security_opt %v user %q: want the overlay's hardening", s.ReadOnly, s.CapDrop, s.SecurityOpt, s.User)
	}
	if got, want := readEnvFile(t, filepath.Join("..", dir, "s3.env")), generatedSecret(t, objs, "whorl-s3").Data; len(got) != len(want) {
		t.Errorf("%ss3.env has %d variables, the Secret whorl-s3 %d", dir, len(got), len(want))
	}
	for name, s := range svcs {
		if len(s.Command) > 0 && (s.Command[0] == "coordinator" || s.Command[0] == "worker") && !slices.Equal(s.EnvFile, []string{dir + "s3.env"}) {
			t.Errorf("compose %s: env_file %v, want [%ss3.env] (the overlay's Secret whorl-s3)", name, s.EnvFile, dir)
		}
	}
	checkComposePack(t, svcs, objs, dir)
}

// checkComposePack compares the profile's pack and submit with the
// overlay's submit Job.
func checkComposePack(t *testing.T, svcs map[string]composeService, objs []object, dir string) {
	t.Helper()
	pod := find[*batchv1.Job](t, objs, "Job", "whorl-submit").Spec.Template.Spec
	pack, s := pod.InitContainers[0], svcs["s3-pack"]
	if !slices.Equal(s.Command, pack.Args) || !slices.Equal(s.EnvFile, []string{dir + "s3.env", dir + "s3-writer.env"}) {
		t.Errorf("compose s3-pack: command %v env_file %v, want the overlay's %v with %ss3.env then %ss3-writer.env", s.Command, s.EnvFile, pack.Args, dir, dir)
	}
	if _, ok := s.DependsOn["whorl-s3"]; !ok {
		t.Errorf("compose s3-pack: depends_on %v lacks whorl-s3", s.DependsOn)
	}
	sub, plain := svcs["s3-submit"], svcs["submit"]
	if !slices.Equal(sub.Command, pod.Containers[0].Args) || sub.DependsOn["s3-pack"].Condition != "service_completed_successfully" {
		t.Errorf("compose s3-submit: command %v depends_on %v: want the Job's %v once s3-pack completed", sub.Command, sub.DependsOn, pod.Containers[0].Args)
	}
	for dep, c := range plain.DependsOn {
		if sub.DependsOn[dep] != c {
			t.Errorf("compose s3-submit: depends_on %s %+v, submit's %+v", dep, sub.DependsOn[dep], c)
		}
	}
	if !slices.Contains(sub.Volumes, "${WHORL_S3_JOB:-"+dir+"job.json}:/etc/whorl/job.json:ro") {
		t.Errorf("compose s3-submit: volumes %v: want %sjob.json (the overlay's) at /etc/whorl/job.json", sub.Volumes, dir)
	}
	b, err := os.ReadFile(filepath.Join("..", dir, "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cm := find[*corev1.ConfigMap](t, objs, "ConfigMap", configMapName(t, objs)); cm.Data["job.json"] != string(b) {
		t.Errorf("the overlay's ConfigMap job.json is not %sjob.json", dir)
	}
}
