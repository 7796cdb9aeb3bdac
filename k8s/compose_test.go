package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// composeService is the part of a docker-compose service checked here.
type composeService struct {
	Command         []string          `json:"command"`
	Environment     map[string]string `json:"environment"`
	Volumes         []string          `json:"volumes"`
	StopGracePeriod string            `json:"stop_grace_period"`
	ReadOnly        bool              `json:"read_only"`
	CapDrop         []string          `json:"cap_drop"`
	SecurityOpt     []string          `json:"security_opt"`
	User            string            `json:"user"`
	Networks        map[string]struct {
		Aliases []string `json:"aliases"`
	} `json:"networks"`
}

// readCompose reads ../docker-compose.yaml (YAML anchors and merge keys
// resolved by the YAML decoder).
func readCompose(t *testing.T) map[string]composeService {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `json:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	return f.Services
}

// TestComposeMatchesManifests keeps docker-compose.yaml in step with
// k8s/base: the same commands, the same WHORL_* settings (per-container
// addresses aside, which k8s takes from the pod IP), the same config file
// and data dir, the StatefulSet's DNS names as aliases, the grace period,
// and the hardening the manifests enforce.
func TestComposeMatchesManifests(t *testing.T) {
	svcs := readCompose(t)
	objs := renderOverlay(t, "kind")
	for _, w := range workloads(objs) {
		c := w.pod.Spec.Containers[0]
		switch c.Args[0] {
		case "coordinator":
			for i := range int(w.replicas) {
				name := fmt.Sprintf("whorl-coordinator-%d", i)
				s, ok := svcs[name]
				if !ok {
					t.Errorf("compose lacks service %s (the StatefulSet has %d replicas)", name, w.replicas)
					continue
				}
				checkService(t, name, s, w, c, map[string]string{"WHORL_ID": name, "WHORL_GRPC_ADDR": name + ":7401"})
				want := name + "." + w.service
				if !slices.Contains(s.Networks["default"].Aliases, want) {
					t.Errorf("compose %s: aliases %v lack the StatefulSet name %s", name, s.Networks["default"].Aliases, want)
				}
			}
		case "worker":
			checkService(t, "worker", svcs["worker"], w, c, map[string]string{"WHORL_ID": "", "WHORL_LISTEN": "0.0.0.0:7410"})
		case "submit":
			checkService(t, "submit", svcs["submit"], w, c, nil)
		}
	}
}

// checkService compares one compose service with a pod's container;
// perContainer maps the WHORL_* variables whose value differs by design
// ("" means the compose service leaves it to the default).
func checkService(t *testing.T, name string, s composeService, w workload, c corev1.Container, perContainer map[string]string) {
	t.Helper()
	if strings.Join(s.Command, " ") != strings.Join(c.Args, " ") {
		t.Errorf("compose %s: command %v, the manifest's args %v", name, s.Command, c.Args)
	}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "WHORL_") {
			continue
		}
		want, special := perContainer[e.Name]
		if !special {
			want = e.Value
		}
		if got := s.Environment[e.Name]; got != want {
			t.Errorf("compose %s: %s=%q, the manifest (%s) has %q", name, e.Name, got, w.what, e.Value)
		}
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/tmp" {
			continue // a tmpfs in compose
		}
		if !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.Contains(v, ":"+m.MountPath) }) &&
			!strings.HasPrefix(m.MountPath, "/etc/whorl") {
			t.Errorf("compose %s: no volume at %s (the manifest mounts one)", name, m.MountPath)
		}
	}
	if g := w.pod.Spec.TerminationGracePeriodSeconds; g != nil && s.StopGracePeriod != "" {
		d, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil || d != time.Duration(*g)*time.Second {
			t.Errorf("compose %s: stop_grace_period %q, the manifest's grace is %d s", name, s.StopGracePeriod, *g)
		}
	}
	if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") ||
		s.User != dockerfileUser(t) {
		t.Errorf("compose %s: read_only %v cap_drop %v security_opt %v user %q: want the manifests' hardening",
			name, s.ReadOnly, s.CapDrop, s.SecurityOpt, s.User)
	}
}
