package docker

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// weedImage is the tag of the SeaweedFS image the suite builds.
const weedImage = "whorl-weed:e2e"

// buildWeedImage runs `make image-weed` once per test process (the weed
// binary from internal/s3test/build-seaweedfs.sh's cache: .ci/run builds
// it first; cold, the script takes about 11 minutes).
var buildWeedImage = sync.OnceValue(func() error {
	out, err := exec.Command("make", "-C", root, "image-weed", "WEED_IMAGE="+weedImage).CombinedOutput()
	if err != nil {
		return fmt.Errorf("make image-weed: %w\n%s", err, out)
	}
	return nil
})

// TestComposeS3Profile runs docker-compose.yaml's s3 profile as the README
// says (`--profile s3 up -d --scale submit=0`) with a two-epoch job of
// k8s/overlays/s3/job.json: the SeaweedFS container starts, the pack
// one-shot fills the bucket with the embedded set (waiting for the server),
// and the profile's submit runs the job to its report, whose source is the
// s3:// URL; the coordinators and workers hold only the read-only identity,
// and the server's own image runs as 65532 with a read-only root.
func TestComposeS3Profile(t *testing.T) {
	compose := requireDocker(t)
	if err := buildImage(); err != nil {
		t.Fatal(err)
	}
	if err := buildWeedImage(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	job := tinyJobOf(t, filepath.Join(root, "k8s", "overlays", "s3", "job.json"), 2)
	p := startProfiles(t, compose, []string{"WHORL_WEED_IMAGE=" + weedImage, "WHORL_S3_JOB=" + job}, []string{"s3"},
		"--scale", "submit=0")
	if cs := p.containers("submit"); len(cs) != 0 {
		t.Errorf("submit containers %v with --scale submit=0", cs)
	}
	sub := p.one("s3-submit")
	code := waitExited(t, sub, 5*time.Minute)
	logs, _ := run(t, "docker", "logs", sub)
	const url = "s3://whorl-datasets/embedded"
	if code != "0" || !strings.Contains(logs, "report: ") || !strings.Contains(logs, `"gain"`) || !strings.Contains(logs, `"source":"`+url+`"`) {
		t.Fatalf("s3-submit exited %s without a report of data from %s:\n%s", code, url, tail(logs, 30))
	}
	t.Logf("the s3 profile ran the job to its report in %v (pack %s, submit %s)", time.Since(start).Round(time.Second),
		ran(t, p.one("s3-pack")), ran(t, sub))
	packed, _ := run(t, "docker", "logs", p.one("s3-pack"))
	if !strings.Contains(packed, "packed 3480 images") || !strings.Contains(packed, "at "+url) {
		t.Errorf("s3-pack: %s", packed)
	}
	for _, c := range append(p.workers(), p.one("whorl-coordinator-0")) {
		env := must(t, "docker", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", c)
		if !strings.Contains(env, "AWS_ACCESS_KEY_ID=whorl-dev-reader\n") || !strings.Contains(env, "AWS_ENDPOINT_URL_S3=http://whorl-s3:8333\n") {
			t.Errorf("%s: want the read-only identity and the server's endpoint, environment:\n%s", c, env)
		}
	}
	srv := p.one("whorl-s3")
	if got := must(t, "docker", "inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}", srv); got != "65532:65532 true" {
		t.Errorf("whorl-s3: user and read-only root %q, want 65532:65532 true", got)
	}
}

// waitExited waits for a container to exit and returns its exit code.
func waitExited(t *testing.T, c string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		state := must(t, "docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", c)
		if status, code, _ := strings.Cut(state, " "); status == "exited" {
			return code
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s did not exit within %v", c, limit)
	return ""
}

// ran is how long a container that exited ran.
func ran(t *testing.T, c string) string {
	t.Helper()
	out := must(t, "docker", "inspect", "--format", "{{.State.StartedAt}} {{.State.FinishedAt}}", c)
	from, to, _ := strings.Cut(out, " ")
	a, err1 := time.Parse(time.RFC3339Nano, from)
	b, err2 := time.Parse(time.RFC3339Nano, to)
	if err1 != nil || err2 != nil {
		return out
	}
	return b.Sub(a).Round(100 * time.Millisecond).String()
}
