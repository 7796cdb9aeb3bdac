//go:build !amd64

package gemm

// archKernels returns no assembly kernels on this architecture; the generic one is used.
func archKernels() []kernel { return nil }

// peakLoop has no FMA loop on this architecture: Peak measures nothing.
func peakLoop() (func(int), int, string) { return nil, 0, "none" }
