package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/job"
)

// flowerFolder writes classes sub-folders of n small PNGs whose colours and
// stripes depend on the class.
func flowerFolder(t *testing.T, classes, n int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	for c := range classes {
		sub := filepath.Join(dir, fmt.Sprintf("flower%d", c))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			img := image.NewRGBA(image.Rect(0, 0, 10, 12))
			for y := range 12 {
				for x := range 10 {
					v := uint8(rng.IntN(50))
					if (x+c*y)%(c+2) == 0 {
						v += 160
					}
					img.Set(x, y, color.RGBA{R: v + uint8(30*c), G: v, B: 200 - v, A: 255})
				}
			}
			var b bytes.Buffer
			if err := png.Encode(&b, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("%02d.png", i)), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// tinyJob writes a job configuration small enough for a test under -race.
func tinyJob(t *testing.T) string {
	t.Helper()
	c := job.DefaultConfig()
	c.Data.ImageSize = 8
	c.Split = job.SplitConfig{TestFraction: 0.25, LabeledFraction: 0.5, ValidationFraction: 0.2}
	c.Pretrain.Epochs, c.Pretrain.GlobalBatch = 2, 8
	c.Supervised.Epochs, c.Supervised.Batch = 2, 8
	c.CheckpointEvery = 2
	// The seed and the data folder come from the flags.
	return writeJob(t, c, "seed", "data.dir")
}

// writeJob writes c as a job file without the given keys (top level or
// "section.key") and returns its path.
func writeJob(t *testing.T, c job.Config, drop ...string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.JSON(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range drop {
		if sec, key, ok := strings.Cut(k, "."); ok {
			delete(m[sec].(map[string]any), key)
		} else {
			delete(m, k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunEndToEnd runs a tiny `whorl run` and checks report.json's
// structure and the output files; a second run with the same --out and
// seed resumes and reports the same numbers.
func TestRunEndToEnd(t *testing.T) {
	data, job, out := flowerFolder(t, 3, 16), tinyJob(t), t.TempDir()
	args := []string{"run", "--data", data, "--job-config", job, "--out", out, "--seed", "5", "--workers", "2"}
	text, err := runWhorl(t, args...)
	if err != nil {
		t.Fatalf("whorl run: %v\n%s", err, text)
	}
	for _, want := range []string{"baseline test accuracy", "fine-tuned test accuracy", "gain", "report.md"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	first := readReport(t, out)
	for _, f := range []string{"report.md", "curves.png", "confusion.png", "manifest.json", "pretrained.safetensors", "finetuned.safetensors"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("output %s missing or empty: %v", f, err)
		}
	}
	if first.Seed != 5 || first.Dataset.Source != data || len(first.Dataset.Classes) != 3 {
		t.Errorf("report names seed %d, source %q, classes %v", first.Seed, first.Dataset.Source, first.Dataset.Classes)
	}
	if first.Cluster.Workers < 1 {
		t.Errorf("report cluster %+v", first.Cluster)
	}
	// The local cluster ran with mutual TLS: the run's own CA (its key
	// readable by the owner only) and one identity per member.
	for _, f := range []string{"ca.pem", "coordinator-c0.pem", "worker-w0.pem", "worker-w1.pem", "client-whorl-run.pem"} {
		if _, err := os.Stat(filepath.Join(out, "cluster", "certs", f)); err != nil {
			t.Errorf("the local cluster's certificate %s: %v", f, err)
		}
	}
	if st, err := os.Stat(filepath.Join(out, "cluster", "certs", "ca-key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the run's CA key: %v, %v; want mode 0600", st, err)
	}
	if len(first.Pretext.History) == 0 {
		t.Error("report has no pretext history")
	}
	for _, e := range first.Pretext.History { // the workers report accuracy with the loss
		if e.Loss <= 0 || e.Accuracy <= 0 || e.Accuracy > 1 {
			t.Errorf("pretext epoch %d: loss %v accuracy %v, want both measured", e.Epoch, e.Loss, e.Accuracy)
		}
	}
	text, err = runWhorl(t, args...)
	if err != nil || !strings.Contains(text, "is complete") {
		t.Errorf("rerun on a complete --out: %v\n%s", err, text)
	}
	other := t.TempDir()
	if text, err := runWhorl(t, "run", "--data", data, "--job-config", job, "--out", other, "--seed", "6"); err != nil {
		t.Fatalf("run with another seed: %v\n%s", err, text)
	}
	if _, err := runWhorl(t, "run", "--data", data, "--job-config", job, "--out", other, "--seed", "5"); err == nil ||
		!strings.Contains(err.Error(), "another configuration") {
		t.Errorf("reusing an --out of another seed = %v, want an error", err)
	}
}

func readReport(t *testing.T, out string) experiment.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if err := experiment.CheckReportKeys(m); err != nil {
		t.Error(err)
	}
	var rep experiment.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestRunRejectsBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"preset":"quick","model":{"name":"resnet"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args   []string
		errHas string
	}{
		{[]string{"run", "--preset", "huge"}, "--preset"},
		{[]string{"run", "--workers", "0"}, "--workers"},
		{[]string{"run", "--job-config", bad, "--out", t.TempDir()}, "model.name"},
		{[]string{"run", "--data", filepath.Join(t.TempDir(), "missing"), "--out", t.TempDir(), "--local"}, "missing"},
	}
	for _, tc := range tests {
		if _, err := runWhorl(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("whorl %v = %v, want an error naming %q", tc.args, err, tc.errHas)
		}
	}
}
