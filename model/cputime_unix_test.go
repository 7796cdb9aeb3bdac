//go:build unix

package model

import (
	"syscall"
	"time"
)

// cpuTime is the user+system CPU time of the process so far; benchmarks report CPU time per
// operation because wall time is unreliable on a shared, oversubscribed machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
