// Package memlimit finds the memory limit this process runs under, for
// the coordinator's job admission (`whorl coordinator --job-memory-limit`):
// a size given, or "auto": GOMEMLIMIT when set, else the limit of the
// process's cgroup (v2 memory.max, v1 memory.limit_in_bytes), else none.
package memlimit
