package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/cluster/ringbench"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true}, {"1MiB", 1 << 20, true}, {"16MiB", 16 << 20, true},
		{"64KiB", 64 << 10, true}, {"1GiB", 1 << 30, true}, {"2MB", 2e6, true}, {" 3 MiB ", 3 << 20, true},
		{"MiB", 0, false}, {"-1MiB", 0, false}, {"1XiB", 0, false},
	} {
		got, err := parseBytes(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d (ok=%v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestBenchAllreduceCommand runs `whorl bench allreduce --json` on a small
// in-process ring: the JSON carries the keys the issue names and the
// result is checked against the serial sum (cluster/ringbench's tests hold
// the rest).
func TestBenchAllreduceCommand(t *testing.T) {
	text, err := runWhorl(t, "bench", "allreduce", "--workers", "3", "--bytes", "400012", "--iters", "2", "--warmup", "1", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("%v: %q", err, text)
	}
	for _, k := range []string{"algbw_gibps", "busbw_gibps", "tcp_gibps", "ratio", "correct"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, text)
		}
	}
	if m["correct"] != true {
		t.Errorf("result not correct: %s", text)
	}
	var out bytes.Buffer
	if err := printAllreduce(&out, ringbench.Result{Workers: 3, TLS: true, Transport: "direct"}, false); err != nil || !strings.Contains(out.String(), "mutual TLS") {
		t.Errorf("text output does not say TLS: %q (%v)", out.String(), err)
	}
}
