//go:build amd64

package gemm

import "golang.org/x/sys/cpu"

//go:generate go run gen_kernels.go

// The AVX-512F kernels (kernel_avx512_amd64.s): 14x32 tiles, and 14x16 for narrow edges.
// See kernelFunc; P reads A step-major, R row-major; they store only cols columns.

//go:noescape
func kernAVX512P(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

//go:noescape
func kernAVX512R(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

//go:noescape
func kernAVX512PHalf(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

//go:noescape
func kernAVX512RHalf(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

// The AVX2+FMA kernels (kernel_avx2_amd64.s): 6x16 tiles, and 6x8 for narrow edges; they
// store only cols columns (VMASKMOVPS).

//go:noescape
func kernAVX2P(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

//go:noescape
func kernAVX2R(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

//go:noescape
func kernAVX2PHalf(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

//go:noescape
func kernAVX2RHalf(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, cols int)

// archKernels returns the assembly kernels this CPU and OS support, fastest first.
// golang.org/x/sys/cpu reports AVX2 and AVX-512 only when the OS saves their register state.
func archKernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, kernel{
			name: "avx512", mr: 14, nr: 32, mc: 280, kc: 256, nc: 3072,
			inPlaceBRows: 16, unitRows: 2048, residentBBytes: 4 << 20,
			stepMajor: kernAVX512P, rowMajor: kernAVX512R,
			halfStep: kernAVX512PHalf, halfRow: kernAVX512RHalf, masked: true,
		})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernel{
			name: "avx2", mr: 6, nr: 16, mc: 192, kc: 256, nc: 3072,
			inPlaceBRows: 32, unitRows: 2048, residentBBytes: 4 << 20,
			stepMajor: kernAVX2P, rowMajor: kernAVX2R,
			halfStep: kernAVX2PHalf, halfRow: kernAVX2RHalf, masked: true,
		})
	}
	return ks
}

//go:noescape
func fmaLoopAVX512(iters int)

//go:noescape
func fmaLoopAVX2(iters int)

// peakLoop is the widest FMA peak loop this CPU runs, its float32 lanes and its name.
func peakLoop() (func(int), int, string) {
	switch {
	case cpu.X86.HasAVX512F:
		return fmaLoopAVX512, 16, "avx512"
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return fmaLoopAVX2, 8, "avx2"
	}
	return nil, 0, "none"
}
