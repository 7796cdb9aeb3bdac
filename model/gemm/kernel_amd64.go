//go:build amd64

package gemm

import "golang.org/x/sys/cpu"

//go:generate go run gen_kernels.go

// kernAVX512 is the 14x32 AVX-512F micro-kernel (kernel_avx512_amd64.s); see kernelFunc.
//
//go:noescape
func kernAVX512(k int, a, b, c *float32, ldc int, alpha, beta float32)

// kernAVX2 is the 6x16 AVX2+FMA micro-kernel (kernel_avx2_amd64.s); see kernelFunc.
//
//go:noescape
func kernAVX2(k int, a, b, c *float32, ldc int, alpha, beta float32)

// archKernels returns the assembly kernels this CPU and OS support, fastest first.
// golang.org/x/sys/cpu reports AVX and AVX-512 only when the OS saves their register state.
func archKernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, kernel{name: "avx512", mr: 14, nr: 32, mc: 280, kc: 256, nc: 3072, fn: kernAVX512})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernel{name: "avx2", mr: 6, nr: 16, mc: 192, kc: 256, nc: 3072, fn: kernAVX2})
	}
	return ks
}
