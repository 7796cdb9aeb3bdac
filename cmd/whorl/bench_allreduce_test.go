package main

import (
	"encoding/json"
	"testing"
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

}
