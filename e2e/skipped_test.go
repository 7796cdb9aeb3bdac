package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/experiment"
	"github.com/whorl-ml/whorl/shard"
)

// TestRunNamesSkippedPhotos runs `whorl run` on a folder with two
// unreadable photos among 82 files: within data.max_skipped_fraction the
// run says so on stdout and lists both in report.md, report.json and
// manifest.json; with the default 1% the run is refused, naming the files
// and the setting.
func TestRunNamesSkippedPhotos(t *testing.T) {
	bin := whorlBinary(t)
	dir := tinyDataDir(t, 5, 16)
	broken := []string{"daisy/zz-broken.jpg", "tulip/zz-truncated.jpg"}
	for _, p := range broken {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(p)), []byte("\xff\xd8\xff\xe0 not the rest of a JPEG"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(maxSkipped float64) (string, string, error) {
		c := tinyJob(t, dir, 1)
		c.Data.MaxSkippedFraction = maxSkipped
		cfg := jobFile(t, c)
		out := filepath.Join(t.TempDir(), "out")
		b, err := exec.Command(bin, "run", "--local", "--job-config", cfg, "--out", out).CombinedOutput()
		return string(b), out, err
	}

	stdout, out, err := run(0.05)
	if err != nil {
		t.Fatalf("whorl run with data.max_skipped_fraction 0.05: %v\n%s", err, tail(stdout, 20))
	}
	if !strings.Contains(stdout, "left out: 2 image file(s) that could not be read: daisy/zz-broken.jpg (") ||
		!strings.Contains(stdout, "tulip/zz-truncated.jpg (") {
		t.Errorf("stdout does not name the two unreadable photos:\n%s", tail(stdout, 12))
	}
	t.Logf("within the allowance, stdout ends:\n%s", tail(stdout, 3))
	md, err := os.ReadFile(filepath.Join(out, experiment.FileReportMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range broken {
		if !strings.Contains(string(md), "- `"+p+"`: ") {
			t.Errorf("report.md does not list %s", p)
		}
	}
	var rep experiment.Report
	readJSON(t, filepath.Join(out, experiment.FileReport), &rep)
	var man shard.Manifest
	readJSON(t, filepath.Join(out, experiment.FileManifest), &man)
	for name, got := range map[string][]shard.Skipped{"report.json": rep.Dataset.Skipped, "manifest.json": man.Skipped} {
		if len(got) != 2 || got[0].Path != broken[0] || got[1].Path != broken[1] || got[0].Reason == "" {
			t.Errorf("%s lists skipped %+v, want %v with reasons", name, got, broken)
		}
	}

	stdout, _, err = run(0)
	if err == nil {
		t.Fatalf("whorl run with 2 of 82 photos unreadable and the default 1%% allowance succeeded:\n%s", tail(stdout, 12))
	}
	t.Logf("over the allowance:\n%s", tail(stdout, 3))
	if !strings.Contains(stdout, "2 of 82 image files under "+dir+" could not be read") || !strings.Contains(stdout, "data.max_skipped_fraction") ||
		!strings.Contains(stdout, broken[0]) {
		t.Errorf("the refusal does not name the count, the setting and the files:\n%s", tail(stdout, 12))
	}
}

// readJSON decodes the JSON file name into v.
func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
