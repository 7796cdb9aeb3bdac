package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/model/trainbench"
)

func TestBenchTrainJSON(t *testing.T) {
	out, err := runWhorl(t, "bench", "train", "--model", "small", "--size", "8", "--batch", "8",
		"--seconds", "0.1", "--warmup", "1", "--threads", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	for _, k := range []string{"samples_per_second", "achieved_gflops", "peak_rss_bytes"} {
		if v, ok := r[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, r[k])
		}
	}
	if steps := r["steps"].(float64); steps < 5 {
		t.Errorf("steps = %v, want at least 5", steps)
	}
}

func TestBenchTrainRejectsBadFlags(t *testing.T) {
	cases := []struct{ flag, value, want string }{
		{"--batch", "6", "multiple of 4"},
		{"--model", "resnet", "choose one of"},
		{"--model", "resnet18-tiny", "choose one of"},
		{"--size", "4", "out of range"},
		{"--seconds", "0", "out of range"},
	}
	for _, c := range cases {
		_, err := runWhorl(t, "bench", "train", c.flag, c.value)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: got %v, want an error containing %q", c.flag, c.value, err, c.want)
		}
	}
}

// TestBenchTrainTorchBaseline runs the baseline through a stand-in interpreter that prints what
// rotnet.py bench prints, so the test needs no PyTorch.
func TestBenchTrainTorchBaseline(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "python")
	script := "#!/bin/sh\necho 'warming up'\n" +
		`echo '{"model": "small", "torch": "fake", "channels_last": false, "steps": 5, "samples_per_second": 2.0, "achieved_gflops": 0.5}'` + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runWhorl(t, "bench", "train", "--model", "small", "--batch", "8", "--seconds", "0.1",
		"--warmup", "0", "--threads", "1", "--python", fake, "--torch-reference", "rotnet.py", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r trainbench.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Torch) != 2 || r.Torch[0].SamplesPerSecond != 2 || r.Speedup != r.SamplesPerSecond/2 {
		t.Errorf("torch runs %+v, speed-up %g for %g samples/s", r.Torch, r.Speedup, r.SamplesPerSecond)
	}
}
