package k8s

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks what can be checked without a Docker engine: the
// image is one FROM scratch stage (it must build where nothing can be
// pulled) holding the binary the Makefile builds static and stamped, and it
// runs as a non-root user; .dockerignore sends only what it copies.
func TestDockerfile(t *testing.T) {
	lines := readLines(t, "../Dockerfile")
	var stages, copies []string
	var user, entry string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			stages = append(stages, f[1])
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entry = strings.Join(f[1:], " ")
		case "COPY":
			copies = append(copies, strings.Join(f[1:], " "))
		}
	}
	if len(stages) != 1 || stages[0] != "scratch" {
		t.Errorf("Dockerfile stages %v: want one FROM scratch (nothing to pull)", stages)
	}
	if len(copies) == 0 || copies[0] != "bin/whorl /whorl" {
		t.Errorf("Dockerfile copies %v: want bin/whorl /whorl first", copies)
	}
	build := ""
	for _, l := range readLines(t, "../Makefile") {
		if strings.Contains(l, "build -trimpath") && strings.Contains(l, "./cmd/whorl") ||
			strings.HasPrefix(l, "LDFLAGS") {
			build += l + " "
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "main.version=", "main.commit="} {
		if !strings.Contains(build, want) {
			t.Errorf("the Makefile's build %q lacks %s (a scratch image needs a static, stamped binary)", build, want)
		}
	}
	ignore := strings.Join(readLines(t, "../.dockerignore"), "\n")
	for _, want := range []string{"*", "!bin/whorl", "!bin/rootfs"} {
		if !strings.Contains(ignore, want) {
			t.Errorf(".dockerignore lacks %q (the context must be the binary and the root skeleton only)", want)
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]*:[1-9][0-9]*$`).MatchString(user) {
		t.Errorf("Dockerfile USER %q: want a numeric non-root uid:gid (Kubernetes runAsNonRoot checks numbers)", user)
	}
	for _, name := range overlays(t) {
		for _, w := range workloads(renderOverlay(t, name)) {
			sc := w.pod.Spec.SecurityContext
			if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil || fmt.Sprintf("%d:%d", *sc.RunAsUser, *sc.RunAsGroup) != user {
				t.Errorf("overlay %s %s: runAsUser/runAsGroup differ from the image's USER %s", name, w.what, user)
			}
		}
	}
	if entry != `["/whorl"]` {
		t.Errorf("Dockerfile ENTRYPOINT %s: want [\"/whorl\"] (the manifests pass the command as args)", entry)
	}
}

// readLines reads a file's lines.
func readLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScratchImage runs the binary as the image would: alone in an empty
// root filesystem (chroot), as the image's non-root user, with no
// environment. It needs root for chroot and skips otherwise.
func TestScratchImage(t *testing.T) {
	bin, err := whorlBinary()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary has a program interpreter: it is not static and cannot run FROM scratch")
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root; the static-binary check above ran")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "whorl"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	user := dockerfileUser(t)
	cmd := exec.Command("chroot", "--userspec="+user, root, "/whorl", "version")
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "whorl ") {
		t.Fatalf("chroot --userspec=%s <root with only /whorl> /whorl version: %v\n%s", user, err, out)
	}
}

// dockerfileUser is the Dockerfile's USER.
func dockerfileUser(t *testing.T) string {
	t.Helper()
	for _, l := range readLines(t, "../Dockerfile") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "USER" {
			return f[1]
		}
	}
	t.Fatal("Dockerfile has no USER")
	return ""
}
