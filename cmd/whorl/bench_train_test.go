package main

import (
	"encoding/json"
	"strings"
	"testing"
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
