package docker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImage checks the image's own properties: it prints the stamped
// version and commit, runs as 65532, has no shell, runs with a read-only
// root and no capabilities, and how large it is.
func TestImage(t *testing.T) {
	requireDocker(t)
	if err := buildImage(); err != nil {
		t.Fatal(err)
	}
	v := must(t, "docker", "run", "--rm", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", image, "version")
	if !strings.HasPrefix(v, "whorl ") || strings.Contains(v, "commit unknown") {
		t.Errorf("version in the image = %q, want the stamped version and commit", v)
	}
	if u := must(t, "docker", "image", "inspect", "--format", "{{.Config.User}}", image); u != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", u)
	}
	for _, sh := range []string{"/bin/sh", "sh"} {
		if out, err := run(t, "docker", "run", "--rm", "--entrypoint", sh, image, "-c", "true"); err == nil {
			t.Errorf("the image ran a shell %s: %s", sh, out)
		}
	}
	size := must(t, "docker", "image", "inspect", "--format", "{{.Size}}", image)
	t.Logf("image %s: %s bytes; %s", image, size, v)
}

// tinyJob writes a job of k8s/base/job.json's quick preset cut to 16 px and
// epochs pretraining epochs (about 8 s each with 2 workers on 2 cores).
func tinyJob(t *testing.T, epochs int) string {
	t.Helper()
	return tinyJobOf(t, filepath.Join(root, "k8s", "base", "job.json"), epochs)
}

// tinyJobOf is tinyJob of another job file.
func tinyJobOf(t *testing.T, src string, epochs int) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	j["data"].(map[string]any)["image_size"] = 16
	j["pretrain"].(map[string]any)["epochs"] = epochs
	j["supervised"].(map[string]any)["epochs"] = 2
	out, _ := json.Marshal(j)
	path := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
