package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctor runs a tiny job, then damages one file of a copy of its
// --out at a time: doctor names the file as damaged, says what a rerun
// will do, and fails; on the intact folder it passes.
func TestDoctor(t *testing.T) {
	data, job, out := flowerFolder(t, 3, 16), tinyJob(t), t.TempDir()
	if text, err := runWhorl(t, "run", "--data", data, "--job-config", job, "--out", out); err != nil {
		t.Fatal(err, text)
	}
	text, err := runWhorl(t, "doctor", "--out", out)
	if err != nil || !strings.Contains(text, "the run is complete") || strings.Contains(text, "damaged") {
		t.Fatalf("doctor on an intact run: %v\n%s", err, text)
	}
	blobs, _ := filepath.Glob(filepath.Join(out, "cluster", "c0", "blobs", "*"))
	if len(blobs) == 0 {
		t.Fatal("no checkpoint blob in the run")
	}
	blob := strings.TrimPrefix(blobs[0], out)
	tests := []struct {
		file, verdict string
		keep          int64 // bytes kept (0: half)
	}{
		{"config.json", "a rerun refuses this folder", 0},
		{"manifest.json", "a rerun refuses this folder", 0},
		// bbolt's file is larger than its pages in use: cut into those.
		{"cluster/c0/raft.db", "cannot start the coordinator", 8192},
		{blob, "sets damaged checkpoint blobs aside", 0},
		{"report.json", "damaged outputs", 0},
		{"pretrained.safetensors", "damaged outputs", 0},
		{"curves.png", "damaged outputs", 0},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if b, err := exec.Command("cp", "-a", out, dir).CombinedOutput(); err != nil {
				t.Fatalf("copy: %v: %s", err, b)
			}
			path := filepath.Join(dir, tt.file)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			keep := tt.keep
			if keep == 0 {
				keep = st.Size() / 2
			}
			if err := os.Truncate(path, keep); err != nil {
				t.Fatal(err)
			}
			text, err := runWhorl(t, "doctor", "--out", dir)
			if err == nil || !strings.Contains(text, "damaged  "+path) || !strings.Contains(text, tt.verdict) {
				t.Fatalf("doctor after truncating %s: %v\n%s", tt.file, err, text)
			}
		})
	}
}
