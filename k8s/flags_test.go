package k8s

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// whorlBinary builds cmd/whorl once per test process, the way the
// Dockerfile does (static, -trimpath).
var whorlBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "whorl-k8s-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "whorl")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/whorl-ml/whorl/cmd/whorl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/whorl: %w\n%s", err, out)
	}
	return bin, nil
})

// flagLine matches a flag in cobra's help: "  -h, --name type   usage (default x)".
var flagLine = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)(?: ([a-zA-Z0-9.]+))?\s{2,}(.*)$`)

// defaultRe finds the default value at the end of a flag's usage.
var defaultRe = regexp.MustCompile(`\(default "?([^")]*)"?\)\s*$`)

// flagInfo is one flag as `--help` prints it.
type flagInfo struct {
	typ string // "" for a boolean
	def string // "" when none is printed
}

// commandFlags maps each flag of one whorl command (local and inherited)
// to its type and default.
type commandFlags map[string]flagInfo

// helpFlags runs `whorl <cmd> --help` and parses the flags; cmd may be a
// command and its subcommand ("data pack"); ok is false when the binary
// has no such command.
func helpFlags(t *testing.T, cmd string) (commandFlags, bool) {
	t.Helper()
	bin, err := whorlBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, append(strings.Fields(cmd), "--help")...).CombinedOutput()
	if strings.Contains(string(out), fmt.Sprintf("unknown command %q", cmd)) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("whorl %s --help: %v\n%s", cmd, err, out)
	}
	flags := commandFlags{}
	for _, line := range strings.Split(string(out), "\n") {
		m := flagLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		def := ""
		if d := defaultRe.FindStringSubmatch(m[3]); d != nil {
			def = d[1]
		}
		flags[m[1]] = flagInfo{typ: m[2], def: def}
	}
	if _, ok := flags["help"]; !ok {
		return nil, false
	}
	return flags, true
}

// container is one whorl container of a rendered workload, with the flag
// values it gets from its arguments, environment and config file.
type container struct {
	what   string // "StatefulSet whorl-coordinator" etc.
	pod    corev1.PodTemplateSpec
	c      corev1.Container
	cmd    string
	values map[string]string // flag -> value (args > env > config file)
	config map[string]any    // the config file's keys
}

// podEnv substitutes what the kubelet would for the downward API.
var podEnv = map[string]string{"POD_NAME": "whorl-coordinator-0", "POD_IP": "10.244.1.7", "POD_NAMESPACE": "whorl"}

// expand replaces $(VAR) references like the kubelet does.
func expand(s string, env map[string]string) string {
	return regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// resolve computes the flag values of c as `whorl <cmd>` would see them:
// the config file's keys that are its flags, then WHORL_* variables, then
// the arguments.
func resolve(t *testing.T, objs []object, what string, pod corev1.PodTemplateSpec, flags commandFlags) container {
	t.Helper()
	c := pod.Spec.Containers[0]
	r := container{what: what, pod: pod, c: c, cmd: c.Args[0], values: map[string]string{}}
	env := map[string]string{}
	for k, v := range podEnv {
		env[k] = v
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expand(e.Value, env)
		}
	}
	if p := env["WHORL_CONFIG"]; p != "" {
		r.config = configFile(t, objs, what, pod, c, p)
		for k, v := range r.config {
			if _, ok := flags[k]; ok {
				r.values[k] = fmt.Sprint(v)
			}
		}
	}
	for k, v := range env {
		if name, ok := strings.CutPrefix(k, "WHORL_"); ok {
			r.values[strings.ReplaceAll(strings.ToLower(name), "_", "-")] = v
		}
	}
	for i := 1; i < len(c.Args); i++ {
		name, ok := strings.CutPrefix(c.Args[i], "--")
		if !ok {
			t.Fatalf("%s: argument %q is no --flag", what, c.Args[i])
		}
		if k, v, ok := strings.Cut(name, "="); ok {
			r.values[k] = v
		} else if f, ok := flags[name]; ok && (f.typ == "" || f.typ == "bool") {
			r.values[name] = "true"
		} else if i+1 < len(c.Args) {
			r.values[name] = c.Args[i+1]
			i++
		}
	}
	return r
}

// configFile reads the file at p from the ConfigMap volume mounted over it.
func configFile(t *testing.T, objs []object, what string, pod corev1.PodTemplateSpec, c corev1.Container, p string) map[string]any {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if path.Dir(p) != path.Clean(m.MountPath) {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cm := find[*corev1.ConfigMap](t, objs, "ConfigMap", v.ConfigMap.Name)
				body, ok := cm.Data[path.Base(p)]
				if !ok {
					t.Fatalf("%s: ConfigMap %s has no key %s for WHORL_CONFIG=%s", what, cm.Name, path.Base(p), p)
				}
				var out map[string]any
				if err := yaml.UnmarshalStrict([]byte(body), &out); err != nil {
					t.Fatalf("%s: %s: %v", what, p, err)
				}
				return out
			}
		}
	}
	t.Fatalf("%s: WHORL_CONFIG=%s is not in a mounted ConfigMap", what, p)
	return nil
}

// port returns the port of a HOST:PORT flag value.
func port(e errorf, what, flag, v string) string {
	_, p, err := net.SplitHostPort(v)
	if err != nil {
		e("%s: --%s=%q is not HOST:PORT: %v", what, flag, v, err)
	}
	return p
}

// TestManifestsMatchBinary checks every whorl container of every overlay
// against the flags of the binary built from this tree: the command exists,
// every argument, WHORL_* variable and config-file key is one of its flags,
// and the ports, volumes and Services line up with the flag values.
func TestManifestsMatchBinary(t *testing.T) {
	for _, name := range overlays(t) {
		t.Run(name, func(t *testing.T) {
			objs := renderOverlay(t, name)
			requireCommands(t, objs)
			checkWorkloads(t, t.Errorf, objs)
		})
	}
}

// errorf reports one mismatch (t.Errorf, or a collector in tests of the
// checks themselves).
type errorf func(format string, args ...any)

// requireCommands skips the test while the binary lacks a command that the
// manifests run.
func requireCommands(t *testing.T, objs []object) {
	t.Helper()
	for _, w := range workloads(objs) {
		args := w.pod.Spec.Containers[0].Args
		if len(args) == 0 {
			t.Fatalf("%s: no args; the first must be the whorl command", w.what)
		}
		if _, ok := helpFlags(t, args[0]); !ok {
			t.Skipf("%s runs `whorl %s`, which this tree's binary does not have yet", w.what, args[0])
		}
	}
}

// checkWorkloads checks every whorl container against the binary's flags.
func checkWorkloads(t *testing.T, e errorf, objs []object) {
	t.Helper()
	fileKeys := map[string]string{} // config-file key -> a container that reads the file
	known := map[string]bool{}      // flags of every command the manifests run
	for _, w := range workloads(objs) {
		flags, _ := helpFlags(t, w.pod.Spec.Containers[0].Args[0])
		r := resolve(t, objs, w.what, w.pod, flags)
		for k := range flags {
			known[k] = true
		}
		for k := range r.config {
			fileKeys[k] = w.what
		}
		for k := range r.values {
			if _, ok := flags[k]; !ok {
				e("%s: --%s (from args or WHORL_%s) is not a flag of `whorl %s`",
					w.what, k, strings.ToUpper(strings.ReplaceAll(k, "-", "_")), r.cmd)
			}
		}
		checkCommand(t, e, objs, r, flags, w)
	}
	for k, what := range fileKeys {
		if !known[k] {
			e("%s: config-file key %q is no flag of any whorl command the manifests run (the binary rejects it)", what, k)
		}
	}
}

// workload is a pod template with where it came from.
type workload struct {
	what     string
	pod      corev1.PodTemplateSpec
	replicas int32 // of a StatefulSet
	service  string
}

// workloads lists the pod templates of the rendered objects that run
// whorl (app.kubernetes.io/name: whorl; not, say, the s3 overlay's
// SeaweedFS server).
func workloads(objs []object) []workload {
	var out []workload
	for _, o := range objs {
		w := workload{what: o.kind + " " + o.name}
		switch v := o.obj.(type) {
		case *appsv1.StatefulSet:
			w.pod, w.replicas, w.service = v.Spec.Template, *v.Spec.Replicas, v.Spec.ServiceName
		case *appsv1.Deployment:
			w.pod = v.Spec.Template
		case *batchv1.Job:
			w.pod = v.Spec.Template
		default:
			continue
		}
		if w.pod.Labels["app.kubernetes.io/name"] != "whorl" {
			continue
		}
		out = append(out, w)
	}
	return out
}

// value is the flag's value in r, else the binary's default.
func value(r container, flags commandFlags, flag string) string {
	if v, ok := r.values[flag]; ok {
		return v
	}
	return flags[flag].def
}

// checkCommand checks the values one command needs against the manifests.
func checkCommand(t *testing.T, e errorf, objs []object, r container, flags commandFlags, w workload) {
	t.Helper()
	switch r.cmd {
	case "coordinator":
		wantPort(t, e, r, flags, "grpc-addr", "grpc")
		wantPort(t, e, r, flags, "raft-addr", "raft")
		wantPort(t, e, r, flags, "metrics-addr", "metrics")
		dir := value(r, flags, "data-dir")
		if claim := mountPath(r.c, "data"); claim == "" || path.Clean(dir) != path.Clean(claim) {
			e("%s: --data-dir %q is not the mount of the raft volume claim (%q)", r.what, dir, claim)
		}
		if out := value(r, flags, "out"); !strings.HasPrefix(path.Clean(out)+"/", path.Clean(mountPath(r.c, "data"))+"/") {
			e("%s: --out %q (the report) is not on the coordinator's volume %q", r.what, out, mountPath(r.c, "data"))
		}
		if dns := value(r, flags, "peers-dns"); dns != w.service {
			e("%s: --peers-dns %q, want the StatefulSet's headless Service %q", r.what, dns, w.service)
		}
		if _, ok := flags["replicas"]; ok && value(r, flags, "replicas") != strconv.Itoa(int(w.replicas)) {
			e("%s: --replicas %s, but the StatefulSet has %d", r.what, value(r, flags, "replicas"), w.replicas)
		}
	case "worker":
		wantPort(t, e, r, flags, "listen", "ring")
		wantPort(t, e, r, flags, "metrics-addr", "metrics")
		wantService(t, e, objs, r, flags, "coordinator")
		checkGrace(t, e, r, flags)
	case "operator":
		wantPort(t, e, r, flags, "health-addr", "health")
		wantPort(t, e, r, flags, "metrics-addr", "metrics")
	case "submit", "status":
		wantService(t, e, objs, r, flags, "coordinator")
		if job := value(r, flags, "job"); job != "" {
			configFile(t, objs, r.what, r.pod, r.c, job)
		}
	default:
		e("%s: unexpected command %q", r.what, r.cmd)
	}
}

// wantPort wants the port of a HOST:PORT flag to be the named container port.
func wantPort(t *testing.T, e errorf, r container, flags commandFlags, flag, portName string) {
	t.Helper()
	v := value(r, flags, flag)
	p := containerPort(r.c, portName)
	if p == nil {
		e("%s: no container port %s for --%s", r.what, portName, flag)
		return
	}
	if got := port(e, r.what, flag, v); got != strconv.Itoa(int(p.ContainerPort)) {
		e("%s: --%s=%s listens on port %s, but container port %s is %d", r.what, flag, v, got, portName, p.ContainerPort)
	}
}

// wantService wants a HOST:PORT flag to name a rendered Service and its port.
func wantService(t *testing.T, e errorf, objs []object, r container, flags commandFlags, flag string) {
	t.Helper()
	v := value(r, flags, flag)
	host, p, err := net.SplitHostPort(v)
	if err != nil {
		e("%s: --%s=%q is not HOST:PORT", r.what, flag, v)
		return
	}
	name := strings.SplitN(host, ".", 2)[0]
	var svc *corev1.Service
	for _, o := range objs {
		if s, ok := o.obj.(*corev1.Service); ok && s.Name == name {
			svc = s
		}
	}
	if svc == nil {
		e("%s: --%s=%s: no Service %s", r.what, flag, v, name)
		return
	}
	for _, sp := range svc.Spec.Ports {
		if strconv.Itoa(int(sp.Port)) == p {
			return
		}
	}
	e("%s: --%s=%s: Service %s has no port %s", r.what, flag, v, svc.Name, p)
}

// checkGrace wants the pod's termination grace period to exceed the
// worker's graceful-leave timeout, so the leave is not cut short.
func checkGrace(t *testing.T, e errorf, r container, flags commandFlags) {
	t.Helper()
	if _, ok := flags["leave-timeout"]; !ok {
		e("%s: `whorl worker` has no --leave-timeout to match terminationGracePeriodSeconds", r.what)
		return
	}
	d, err := time.ParseDuration(value(r, flags, "leave-timeout"))
	if err != nil {
		t.Fatalf("%s: --leave-timeout: %v", r.what, err)
	}
	grace := r.pod.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= d {
		e("%s: terminationGracePeriodSeconds %v must exceed --leave-timeout %v", r.what, grace, d)
	}
}
