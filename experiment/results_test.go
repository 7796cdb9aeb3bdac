package experiment

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/whorl-ml/whorl/job"
)

// TestResultFiles: the runner lists the files the report names and the
// baseline arm's only when baseline.json in OutDir is this job's (the
// baseline may have run on another leader, leaving an earlier job's or
// none); nothing without OutDir.
func TestResultFiles(t *testing.T) {
	c := job.DefaultConfig()
	other := c
	other.Seed++
	report, _ := json.Marshal(map[string]any{"files": map[string]string{"report": FileReport, "finetuned": FileFinetuned,
		"baseline": FileBaselineCk, "baseline_selftrained": FileBaselineSelfCk}})
	baselineOf := func(c job.Config) []byte {
		b, _ := json.Marshal(baselineResult{ConfigDigest: job.Digest(c)})
		return b
	}
	fineTuned := []string{FileFinetuned, FileReport}
	for _, tc := range []struct {
		name     string
		baseline []byte // baseline.json's content; nil: none
		selfCk   bool   // baseline-selftrained.safetensors is there
		want     []string
	}{
		{"own baseline", baselineOf(c), false, append([]string{FileBaseline, FileBaselineCk}, fineTuned...)},
		{"own baseline with its student", baselineOf(c), true, append([]string{FileBaselineSelfCk, FileBaseline, FileBaselineCk}, fineTuned...)},
		{"an earlier job's baseline", baselineOf(other), true, fineTuned},
		{"no baseline here", nil, false, fineTuned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			for _, f := range []string{FileReport, FileFinetuned, FileBaselineCk} {
				writeTestFile(t, filepath.Join(out, f), "x")
			}
			if tc.baseline != nil {
				writeTestFile(t, filepath.Join(out, FileBaseline), string(tc.baseline))
			}
			if tc.selfCk {
				writeTestFile(t, filepath.Join(out, FileBaselineSelfCk), "x")
			}
			got, err := (&Runner{OutDir: out}).ResultFiles(c.JSON(), report)
			if err != nil {
				t.Fatal(err)
			}
			names := slices.Sorted(maps.Keys(got))
			slices.Sort(tc.want)
			if !slices.Equal(names, tc.want) {
				t.Fatalf("result files %v, want %v", names, tc.want)
			}
			for name, path := range got {
				if path != filepath.Join(out, name) {
					t.Errorf("%s at %s, want in %s", name, path, out)
				}
			}
		})
	}
	if got, err := (&Runner{}).ResultFiles(c.JSON(), report); err != nil || got != nil {
		t.Errorf("without OutDir: %v, %v; want nothing", got, err)
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
