//go:build !amd64

package gemm

// archKernels returns no assembly kernels on this architecture; the generic one is used.
func archKernels() []kernel { return nil }
