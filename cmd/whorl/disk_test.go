package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/job"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and returns
// it (unmounted at cleanup). Without root or mount it skips, saying so,
// unless WHORL_TEST_TMPFS=require (set by .ci/run), when it fails.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("WHORL_TEST_TMPFS") == "require" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("a full-disk test needs root to mount a tmpfs (WHORL_TEST_TMPFS=require makes this a failure)")
	}
	dir := t.TempDir()
	if b, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		skip("a full-disk test needs to mount a tmpfs: %v: %s", err, b)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// runWhorlFor runs whorl in-process with a deadline.
func runWhorlFor(t *testing.T, d time.Duration, args ...string) (string, error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	start := time.Now()
	err := root.ExecuteContext(ctx)
	return out.String(), err, time.Since(start)
}

// TestRunFullDiskFailsThenResumes: --out on a 6 MiB tmpfs holds two of the
// tiny job's 2.7 MB checkpoints, not the third. whorl run must stop within
// seconds with an error naming the file and the cause (not wait forever on
// a job that cannot move past its next checkpoint), and the same command
// with room (the output folder copied to a normal disk) resumes from the
// last checkpoint and finishes.
func TestRunFullDiskFailsThenResumes(t *testing.T) {
	out := mountTmpfs(t, "6m")
	data, job := flowerFolder(t, 3, 16), tinyJob(t)
	args := []string{"run", "--data", data, "--job-config", job, "--workers", "2"}
	text, err, took := runWhorlFor(t, 60*time.Second, append(args, "--out", out)...)
	t.Logf("full disk: after %v: %v\n%s", took.Round(time.Millisecond), err, text)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") ||
		!strings.Contains(err.Error(), filepath.Join(out, "cluster")) || !strings.Contains(err.Error(), "rerun the same command") {
		t.Fatalf("whorl run on a full disk = %v, want the path, the cause and what to do", err)
	}
	if took > 30*time.Second {
		t.Errorf("the error took %v, want seconds", took)
	}
	roomy, rotten := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "out")
	for _, dst := range []string{roomy, rotten} {
		if b, err := exec.Command("cp", "-a", out, dst).CombinedOutput(); err != nil {
			t.Fatalf("copy the output folder: %v: %s", err, b)
		}
	}
	resumeDamaged(t, args, rotten)
	text, err, took = runWhorlFor(t, 120*time.Second, append(args, "--out", roomy)...)
	if err != nil || !strings.Contains(text, "resuming job") || !strings.Contains(text, "gain") {
		t.Fatalf("rerun with room (%v): %v\n%s", took, err, text)
	}
	whole := t.TempDir()
	if text, err, _ := runWhorlFor(t, 120*time.Second, append(args, "--out", whole)...); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, text)
	}
	resumed, straight := readReport(t, roomy), readReport(t, whole)
	if a, b := fmt.Sprintf("%+v", untimed(resumed.Pretext.History)), fmt.Sprintf("%+v", untimed(straight.Pretext.History)); a != b {
		t.Errorf("pretext history of the resumed run\n%s\nwant the uninterrupted run's\n%s", a, b)
	}
	if a, b := resumed.Finetune.TestAccuracy, straight.Finetune.TestAccuracy; a != b {
		t.Errorf("fine-tuned test accuracy %v after the resume, %v without", a, b)
	}
}

// resumeDamaged truncates every checkpoint blob of an interrupted run's
// --out and reruns it: within seconds the rerun names the damaged blob, not
// retrying the fetch forever, and either stops (the job failed while it
// followed it) or, finding the job failed, starts it again from the
// beginning and says so.
func resumeDamaged(t *testing.T, args []string, out string) {
	t.Helper()
	blobs, _ := filepath.Glob(filepath.Join(out, "cluster", "c0", "blobs", "*"))
	for _, b := range blobs {
		if err := os.Truncate(b, 1000); err != nil {
			t.Fatal(err)
		}
	}
	text, err, took := runWhorlFor(t, 60*time.Second, append(args, "--out", out)...)
	t.Logf("damaged checkpoints: after %v: %v\n%s", took.Round(time.Millisecond), err, text)
	if lb, _ := os.ReadFile(filepath.Join(out, "cluster.log")); os.Getenv("WHORL_TEST_LOG") != "" {
		t.Logf("%s", lb)
	}
	said := text
	if err != nil {
		said = err.Error()
		if took > 30*time.Second {
			t.Errorf("the error took %v, want seconds", took)
		}
	} else if !strings.Contains(text, "starting the job again from the beginning") || !strings.Contains(text, "gain") {
		t.Errorf("rerun after the failure did not say it starts again, or did not finish:\n%s", text)
	}
	if !strings.Contains(said, ".damaged") || !strings.Contains(said, "no coordinator holds an intact copy") {
		t.Fatalf("resume with damaged checkpoints = %v, want the damaged blob named\n%s", err, text)
	}
}

// untimed is a pretext history without its step times (wall time differs
// between runs; every other figure must not).
func untimed(h []job.EpochStat) []job.EpochStat {
	out := slices.Clone(h)
	for i := range out {
		out[i].Seconds = 0
	}
	return out
}
