package memlimit

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/whorl-ml/whorl/internal/bytesize"
)

// Resolve turns the setting s of the limit called name into bytes (0: no
// limit, admit every job) and says where the limit came from: "off" or
// "0"; "auto" (GOMEMLIMIT, else the cgroup's limit, else none); or a size
// of at least 1MiB (bytesize.Parse), from name. Its errors name name.
func Resolve(name, s string) (int64, string, error) {
	switch s {
	case "off", "0":
		return 0, "off", nil
	case "auto":
		if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
			return l, "GOMEMLIMIT", nil
		}
		if f := cgroupFile(); f != "" {
			if l, ok := cgroupMax(f); ok {
				return l, f, nil
			}
		}
		return 0, "off (no GOMEMLIMIT, no cgroup limit)", nil
	}
	b, err := bytesize.Parse(s)
	if err != nil || b < 1<<20 {
		return 0, "", fmt.Errorf(`%s %q: want a size of at least 1MiB (4GiB), "auto" or "off"`, name, s)
	}
	return b, name, nil
}

// cgroupFile is the memory limit file of this process's cgroup, from
// /proc/self/cgroup: v2's "0::PATH" gives /sys/fs/cgroup/PATH/memory.max,
// v1's "N:memory:PATH" /sys/fs/cgroup/memory/PATH/memory.limit_in_bytes
// (preferred: on a hybrid host the v2 tree holds no controller); "" when
// neither is listed.
func cgroupFile() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	v2 := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		path := filepath.Clean("/" + f[2])
		switch {
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			return filepath.Join("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes")
		case f[0] == "0" && f[1] == "":
			v2 = filepath.Join("/sys/fs/cgroup", path, "memory.max")
		}
	}
	return v2
}

// cgroupMax reads a cgroup memory limit: a number of bytes, or "max" (v2)
// or a value near 2^63 (v1) for no limit (ok is false).
func cgroupMax(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil && v > 0 && v < 1<<62
}
