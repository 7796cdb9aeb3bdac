package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/cluster/ringbench"
)

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
