// Package ringbench measures the ring all-reduce (package cluster) on
// loopback against the topology's physical limit, raw TCP connections
// arranged as the same ring and loaded at once in the same run: `whorl
// bench allreduce` is its command line. Members run as goroutines or, with
// Options.Procs, as child processes the caller starts (Spawn) that run
// Worker; every result is checked bit for bit against the serial sum in
// ring order. It reports algbw and busbw as nccl-tests define them.
package ringbench
