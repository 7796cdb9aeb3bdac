package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/experiment"
)

// TestInterruptedRunResumesToTheSameReport interrupts `whorl run` with
// SIGINT (Ctrl-C) in pretraining, reruns it with the same --out, and wants
// the report of an uninterrupted run: every figure but the timings equal,
// and the pretraining time counting the steps of both processes (it was
// 0.0001 s after a resume, with 261 million samples/s). In one process
// (--local) and on the local cluster.
func TestInterruptedRunResumesToTheSameReport(t *testing.T) {
	bin := whorlBinary(t)
	dir := tinyDataDir(t, 5, 120)
	c := tinyJob(t, dir, 6)
	c.CheckpointEvery = 5
	cfg := jobFile(t, c)
	for _, mode := range []struct{ name, flag string }{{"local", "--local"}, {"cluster", ""}} {
		t.Run(mode.name, func(t *testing.T) {
			args := func(out string) []string {
				a := []string{"run", "--job-config", cfg, "--out", out}
				if mode.flag != "" {
					a = append(a, mode.flag)
				}
				return a
			}
			whole := filepath.Join(t.TempDir(), "whole")
			if b, err := exec.Command(bin, args(whole)...).CombinedOutput(); err != nil {
				t.Fatalf("uninterrupted run: %v\n%s", err, tail(string(b), 20))
			}
			cut := filepath.Join(t.TempDir(), "cut")
			first := interruptAfter(t, bin, args(cut), "pretraining epoch   1/6", 500*time.Millisecond)
			if strings.Contains(first, "baseline ") || !strings.Contains(first, "interrupted;") {
				t.Fatalf("the first run was not interrupted in pretraining:\n%s", tail(first, 10))
			}
			b, err := exec.Command(bin, args(cut)...).CombinedOutput()
			if err != nil {
				t.Fatalf("resumed run: %v\n%s", err, tail(string(b), 20))
			}
			t.Logf("interrupted:\n%s\nresumed:\n%s", tail(first, 3), tail(string(b), 12))
			var a, r experiment.Report
			readJSON(t, filepath.Join(whole, experiment.FileReport), &a)
			readJSON(t, filepath.Join(cut, experiment.FileReport), &r)
			ta, tr := a.Timing, r.Timing
			t.Logf("pretraining seconds: uninterrupted %.2f, interrupted and resumed %.2f (%.0f and %.0f samples/s)",
				ta.PretrainSeconds, tr.PretrainSeconds, ta.PretrainSamplesPerSecond, tr.PretrainSamplesPerSecond)
			if tr.PretrainSeconds < ta.PretrainSeconds/3 || tr.PretrainSeconds > 3*ta.PretrainSeconds {
				t.Errorf("pretraining time after a resume %.3f s, the uninterrupted run's %.3f s", tr.PretrainSeconds, ta.PretrainSeconds)
			}
			if d := reportDiff(t, a, r); d != "" {
				t.Errorf("the resumed run's report differs from the uninterrupted one's (timings aside): %s", d)
				keepRuns(t, whole, cut)
				for i := range min(len(a.Pretext.History), len(r.Pretext.History)) {
					t.Logf("epoch %d: loss %.9f / %.9f, accuracy %.9f / %.9f", i+1, a.Pretext.History[i].Loss, r.Pretext.History[i].Loss,
						a.Pretext.History[i].Accuracy, r.Pretext.History[i].Accuracy)
				}
			}
		})
	}
}

// interruptAfter runs `whorl args...`, sends SIGINT the time after after
// its output shows marker, and returns its whole output when it exited.
func interruptAfter(t *testing.T, bin string, args []string, marker string, after time.Duration) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	text := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(text(), marker) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(after) // into the next epoch: its first steps must be kept
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("whorl run still ran a minute after SIGINT:\n%s", tail(text(), 10))
	}
	return text()
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// reportDiff compares two reports as JSON with every timing left out (the
// timing section, the phases' and epochs' seconds, the cluster's address
// details); "" when they agree.
func reportDiff(t *testing.T, a, b experiment.Report) string {
	t.Helper()
	norm := func(r experiment.Report) any {
		r.Timing = experiment.Timing{}
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		return dropKeys(v, "seconds")
	}
	va, vb := norm(a), norm(b)
	if reflect.DeepEqual(va, vb) {
		return ""
	}
	return firstDiff("", va, vb)
}

// dropKeys removes every key named key from decoded JSON.
func dropKeys(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, key)
		for k, e := range x {
			x[k] = dropKeys(e, key)
		}
	case []any:
		for i, e := range x {
			x[i] = dropKeys(e, key)
		}
	}
	return v
}

// firstDiff names the first path where decoded JSON a and b differ.
func firstDiff(path string, a, b any) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		for k, e := range x {
			if !reflect.DeepEqual(e, y[k]) {
				return firstDiff(path+"."+k, e, y[k])
			}
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				return path + "." + k + ": only in the resumed report"
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			break
		}
		for i := range x {
			if !reflect.DeepEqual(x[i], y[i]) {
				return firstDiff(path+"["+strconv.Itoa(i)+"]", x[i], y[i])
			}
		}
	}
	sa, _ := json.Marshal(a)
	sb, _ := json.Marshal(b)
	return path + ": " + string(sa) + " vs " + string(sb)
}

// keepRuns copies the runs' reports and logs into $WHORL_E2E_KEEP_LOGS (when
// set) to read a failure's timeline.
func keepRuns(t *testing.T, dirs ...string) {
	keep := os.Getenv("WHORL_E2E_KEEP_LOGS")
	if keep == "" {
		return
	}
	dst, err := os.MkdirTemp(keep, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Log(err)
		return
	}
	for _, d := range dirs {
		_ = os.CopyFS(filepath.Join(dst, filepath.Base(d)), os.DirFS(d))
	}
	t.Logf("runs kept in %s", dst)
}
