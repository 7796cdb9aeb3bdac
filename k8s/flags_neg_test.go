package k8s

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestChecksCatchMismatches breaks the rendered kind overlay in the ways a
// manifest drifts from the binary and wants each one reported.
func TestChecksCatchMismatches(t *testing.T) {
	objs := renderOverlay(t, "kind")
	requireCommands(t, objs)
	coord := func(o []object) *corev1.Container {
		return &find[*appsv1.StatefulSet](t, o, "StatefulSet", "whorl-coordinator").Spec.Template.Spec.Containers[0]
	}
	worker := func(o []object) *corev1.Container {
		return &find[*appsv1.Deployment](t, o, "Deployment", "whorl-worker").Spec.Template.Spec.Containers[0]
	}
	setEnv := func(c *corev1.Container, name, value string) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].Value = value
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
	tests := []struct {
		name   string
		mutate func(o []object)
		errHas string
	}{
		{"env typo", func(o []object) { setEnv(coord(o), "WHORL_RAFT_ADR", "0.0.0.0:7400") }, "--raft-adr"},
		{"grpc port drift", func(o []object) { setEnv(coord(o), "WHORL_GRPC_ADDR", "$(POD_IP):7499") }, "listens on port 7499"},
		{"replicas drift", func(o []object) { setEnv(coord(o), "WHORL_REPLICAS", "5") }, "--replicas 5"},
		{"ring port drift", func(o []object) { worker(o).Ports[0].ContainerPort = 7411 }, "container port ring is 7411"},
		{"unknown arg", func(o []object) { worker(o).Args = append(worker(o).Args, "--wrokers", "3") }, "--wrokers"},
		{"data dir off the volume", func(o []object) { setEnv(coord(o), "WHORL_DATA_DIR", "/tmp/raft") }, "--data-dir"},
		{"no such service", func(o []object) { setEnv(worker(o), "WHORL_COORDINATOR", "coordinator:7401") }, "no Service coordinator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := deepCopy(objs)
			tc.mutate(o)
			var got []string
			e := func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) }
			checkWorkloads(t, e, o)
			all := strings.Join(got, "\n")
			if !strings.Contains(all, tc.errHas) {
				t.Errorf("want a report naming %q, got:\n%s", tc.errHas, all)
			}
		})
	}
}

// deepCopy copies the typed objects so a test can change them.
func deepCopy(objs []object) []object {
	out := make([]object, len(objs))
	for i, o := range objs {
		out[i] = o
		out[i].obj = o.obj.DeepCopyObject()
	}
	return out
}
