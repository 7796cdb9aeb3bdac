package ringbench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary a benchmark member: TestMain runs Worker
// with the options and rank in it instead of the tests.
const childEnv = "WHORL_RINGBENCH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		var o Options
		var rank int
		var timeout string
		if _, err := fmt.Sscanf(spec, "%d %d %d %d %d %d %s %s", &rank, &o.Workers, &o.Bytes, &o.Iters, &o.Warmup, &o.Streams, &o.Transport, &timeout); err != nil {
			fmt.Fprintln(os.Stderr, "child spec:", err)
			os.Exit(2)
		}
		o.Chunk = 64 << 10
		o.Timeout, _ = time.ParseDuration(timeout)
		if err := Worker(context.Background(), o, rank, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// spawnTest re-executes the test binary as member rank.
func spawnTest(ctx context.Context, o Options, rank int) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %d %d %d %d %d %s %s", childEnv, rank, o.Workers, o.Bytes, o.Iters, o.Warmup, o.Streams, o.Transport, o.Timeout))
	return cmd
}

func small() Options {
	return Options{Workers: 3, Iters: 2, Warmup: 1, Streams: 2, Bytes: 100_003 * 4, Chunk: 64 << 10, Timeout: 30 * time.Second, Transport: "grpc"}
}

// TestRunMeasuresAndChecks runs the ring in-process on each transport,
// plaintext and on mutual TLS, and in child processes: every result is
// bit-exact against the serial sum, and the bandwidths are measured.
func TestRunMeasuresAndChecks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transport string
		tls       bool
		procs     bool
	}{{"grpc", "grpc", false, false}, {"direct", "direct", false, false}, {"grpc tls", "grpc", true, false},
		{"direct tls", "direct", true, false}, {"processes", "grpc", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			o := small()
			o.Transport, o.TLS, o.Procs = tc.transport, tc.tls, tc.procs
			res, err := Run(context.Background(), o, spawnTest)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Correct || res.BusBW <= 0 || res.TCP <= 0 || res.Ratio <= 0 || res.TLS != tc.tls || res.Procs != tc.procs {
				t.Fatalf("result %+v", res)
			}
			if res.Bytes != 100_003*4 || res.TCPLinkBytes != res.Bytes*2*2/3 {
				t.Errorf("bytes %d, TCP link bytes %d: want %d and 2(n-1)/n of it", res.Bytes, res.TCPLinkBytes, 100_003*4)
			}
		})
	}
}

// TestRunRefusesTLSInProcesses: mutual TLS is in-process only, and
// processes need a way to start them.
func TestRunRefusesTLSInProcesses(t *testing.T) {
	o := small()
	o.TLS, o.Procs = true, true
	if _, err := Run(context.Background(), o, spawnTest); err == nil || !strings.Contains(err.Error(), "--procs") {
		t.Errorf("TLS in processes: %v, want a refusal naming --procs", err)
	}
	o.TLS = false
	if _, err := Run(context.Background(), o, nil); err == nil {
		t.Error("processes without a spawn function: no error")
	}
}

// TestResultPrint: the text form says how the ring ran (processes, mutual
// TLS) and the size in bytesize's form.
func TestResultPrint(t *testing.T) {
	var out bytes.Buffer
	if err := (Result{Workers: 3, TLS: true, Transport: "direct", Bytes: 16 << 20}).Print(&out, false); err != nil ||
		!strings.Contains(out.String(), "mutual TLS") || !strings.Contains(out.String(), "bytes=16MiB") {
		t.Errorf("text output does not say TLS and 16MiB: %q (%v)", out.String(), err)
	}
}
