//go:build unix

package shard

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time of this process so far, so a
// benchmark on a shared machine can report work done apart from waiting.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
