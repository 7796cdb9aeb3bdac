package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestResolve: the limit takes a size, "off", or "auto" (GOMEMLIMIT first,
// then the cgroup's memory.max), and refuses anything else naming the
// setting.
func TestResolve(t *testing.T) {
	const flag = "--job-memory-limit"
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	for _, c := range []struct {
		in    string
		gomem int64
		want  int64
		from  string
	}{
		{"off", math.MaxInt64, 0, "off"},
		{"4GiB", math.MaxInt64, 4 << 30, flag},
		{"auto", 3 << 30, 3 << 30, "GOMEMLIMIT"},
	} {
		debug.SetMemoryLimit(c.gomem)
		got, from, err := Resolve(flag, c.in)
		if err != nil || got != c.want || from != c.from {
			t.Errorf("%q: %d from %q (%v), want %d from %q", c.in, got, from, err, c.want, c.from)
		}
	}
	if f := cgroupFile(); f != "" && !strings.HasSuffix(f, "/memory.max") && !strings.HasSuffix(f, "/memory.limit_in_bytes") {
		t.Errorf("this process's cgroup memory file %q", f)
	} else {
		t.Logf("this process's cgroup memory file: %q", f)
	}
	for _, bad := range []string{"lots", "10", "-1GiB"} {
		if _, _, err := Resolve(flag, bad); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%q: %v, want it refused naming the flag", bad, err)
		}
	}
	dir := t.TempDir()
	for content, want := range map[string]int64{"max\n": 0, "1073741824\n": 1 << 30, "garbage": 0, "9223372036854771712\n": 0} {
		p := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, ok := cgroupMax(p); got != want && ok || ok != (want > 0) {
			t.Errorf("memory.max %q: %d %v, want %d", content, got, ok, want)
		}
	}
}
