package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
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

// TestBenchAllreduceJSON runs the benchmark's in-process ring end to end on
// a small buffer: the result is checked against the serial sum, and the
// JSON carries the keys the issue names.
func TestBenchAllreduceJSON(t *testing.T) {
	o := allreduceOpts{workers: 3, iters: 2, warmup: 1, streams: 2, bytes: 100_003 * 4, chunk: 64 << 10, timeout: 30e9, asJSON: true}
	res, err := runAllreduceBench(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printAllreduce(&out, res, true); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"algbw_gibps", "busbw_gibps", "tcp_gibps", "ratio", "correct"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out.String())
		}
	}
	if m["correct"] != true || res.BusBW <= 0 || res.TCP <= 0 {
		t.Fatalf("result %+v", res)
	}
}

// TestBenchAllreduceTLS: --tls runs the ring on mutual TLS with a worker's
// identity, bit-exact like plaintext, says so, and refuses --procs.
func TestBenchAllreduceTLS(t *testing.T) {
	o := allreduceOpts{workers: 3, iters: 2, warmup: 1, streams: 2, bytes: 100_003 * 4, chunk: 64 << 10, timeout: 30e9, tls: true}
	for _, tr := range []string{"direct", "grpc"} {
		o.transport = tr
		res, err := runAllreduceBench(context.Background(), o)
		if err != nil || !res.Correct || !res.TLS {
			t.Fatalf("%s: %+v, %v", tr, res, err)
		}
		var out bytes.Buffer
		if err := printAllreduce(&out, res, false); err != nil || !strings.Contains(out.String(), "mutual TLS") {
			t.Errorf("%s: output does not say TLS: %q (%v)", tr, out.String(), err)
		}
	}
	o.procs = true
	if _, err := runAllreduceBench(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--procs") {
		t.Errorf("--tls --procs: %v, want a refusal naming --procs", err)
	}
}
