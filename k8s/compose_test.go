package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// composeService is the part of a docker-compose service checked here.
type composeService struct {
	Image     string   `json:"image"`
	Hostname  string   `json:"hostname"`
	Profiles  []string `json:"profiles"`
	Command   []string `json:"command"`
	EnvFile   []string `json:"env_file"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Environment     map[string]string `json:"environment"`
	Volumes         []string          `json:"volumes"`
	StopGracePeriod string            `json:"stop_grace_period"`
	ReadOnly        bool              `json:"read_only"`
	CapDrop         []string          `json:"cap_drop"`
	CapAdd          []string          `json:"cap_add"`
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
// k8s/base (the kind overlay; TLS aside, which TestComposeTLS compares with
// the production overlay): the same commands, the same WHORL_* settings (per-container
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
				checkService(t, name, s, w, c, map[string]string{"WHORL_ID": name, "WHORL_GRPC_ADDR": name + ":7401", "WHORL_INSECURE": ""})
				want := name + "." + w.service
				if !slices.Contains(s.Networks["default"].Aliases, want) {
					t.Errorf("compose %s: aliases %v lack the StatefulSet name %s", name, s.Networks["default"].Aliases, want)
				}
			}
		case "worker":
			workers := composeWorkers(svcs)
			if len(workers) < 2 {
				t.Errorf("compose has workers %v, want at least two (worker-<i>)", workers)
			}
			for _, name := range workers {
				checkService(t, name, svcs[name], w, c, map[string]string{"WHORL_ID": name, "WHORL_LISTEN": "0.0.0.0:7410", "WHORL_INSECURE": ""})
			}
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

// composeWorkers are the compose file's worker services (worker-<i>), sorted.
func composeWorkers(svcs map[string]composeService) []string {
	var names []string
	for name := range svcs {
		if strings.HasPrefix(name, "worker-") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// TestComposeTLS checks docker-compose.yaml's mutual TLS against the
// production overlay's: every whorl service reads the same WHORL_TLS_*
// files from a volume of its own identity (tls-<name>) at the same path;
// the one-shot certs service issues exactly those identities (the role and
// name each container runs as) in the dirs layout, each into the volume its
// container mounts, owned by the image's user; it alone mounts the CA's
// volume, with no capability but CHOWN; nothing asks for plaintext.
func TestComposeTLS(t *testing.T) {
	svcs := readCompose(t)
	var want []corev1.EnvVar
	for _, w := range workloads(renderOverlay(t, "production")) {
		for _, e := range w.pod.Spec.Containers[0].Env {
			if strings.HasPrefix(e.Name, "WHORL_TLS_") {
				want = append(want, e)
			}
		}
		break
	}
	if len(want) != 3 {
		t.Fatalf("the production overlay's coordinator has TLS variables %v, want 3", want)
	}
	certs, ok := svcs["certs"]
	if !ok {
		t.Fatal("compose has no certs service")
	}
	issued := map[string]string{} // volume -> identity folder
	args := strings.Join(certs.Command, " ")
	for _, v := range certs.Volumes {
		vol, path, _ := strings.Cut(v, ":")
		issued[vol] = path
	}
	out := issued["ca"]
	if out == "" || !strings.Contains(args, "--out "+out) || !strings.Contains(args, "--layout dirs") ||
		!strings.Contains(args, "--owner "+dockerfileUser(t)) {
		t.Errorf("compose certs: command %q volumes %v: want --out on the ca volume, --layout dirs, --owner %s", args, certs.Volumes, dockerfileUser(t))
	}
	if !certs.ReadOnly || !slices.Equal(certs.CapDrop, []string{"ALL"}) || !slices.Equal(certs.CapAdd, []string{"CHOWN"}) ||
		!slices.Contains(certs.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("compose certs: read_only %v cap_drop %v cap_add %v security_opt %v: want read-only, only CHOWN, no new privileges",
			certs.ReadOnly, certs.CapDrop, certs.CapAdd, certs.SecurityOpt)
	}
	roles := map[string]string{"coordinator": "--coordinators", "worker": "--workers", "submit": "--clients"}
	for name, s := range svcs {
		if name == "certs" || !strings.Contains(s.Image, "WHORL_IMAGE") || len(s.Command) > 0 && s.Command[0] == "data" {
			continue // not whorl (the s3 profile's server), or no client of the cluster (its packer)
		}
		for _, e := range want {
			if got := s.Environment[e.Name]; got != e.Value {
				t.Errorf("compose %s: %s=%q, the production overlay has %q", name, e.Name, got, e.Value)
			}
		}
		if _, ok := s.Environment["WHORL_INSECURE"]; ok {
			t.Errorf("compose %s: WHORL_INSECURE set: compose runs on mutual TLS", name)
		}
		role, id := "client", name
		if name == "s3-submit" {
			id = "submit" // the submit client, with the s3 profile's job
		}
		switch {
		case len(s.Command) > 0 && s.Command[0] == "coordinator":
			role = "coordinator"
		case len(s.Command) > 0 && s.Command[0] == "worker":
			role = "worker"
		}
		flag := roles[role]
		if role == "client" {
			flag = roles["submit"]
		}
		vol := "tls-" + id
		if !slices.Contains(s.Volumes, vol+":"+tlsDir+":ro") {
			t.Errorf("compose %s: volumes %v lack its identity %s:%s:ro", name, s.Volumes, vol, tlsDir)
		}
		if got := issued[vol]; got != out+"/"+role+"-"+id {
			t.Errorf("compose certs: volume %s at %q, want %s/%s-%s (where --layout dirs writes %s's identity)", vol, got, out, role, id, name)
		}
		if !regexpWord(flag, id).MatchString(args) {
			t.Errorf("compose certs: %s does not list %s (command %q)", flag, id, args)
		}
		for _, v := range s.Volumes {
			if strings.HasPrefix(v, "ca:") {
				t.Errorf("compose %s mounts the CA's volume: it could issue any identity", name)
			}
		}
	}
}

// regexpWord matches "flag a,b,...,word,..." with word one of the list.
func regexpWord(flag, word string) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(flag) + ` (?:[^ ]*,)?` + regexp.QuoteMeta(word) + `(?:,[^ ]*)?(?: |$)`)
}
