package gemm

import "testing"

// FuzzSgemm checks random shapes, strides, transposes, scalars, kernels and thread counts
// against the float64 reference.
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(7), uint8(13), uint8(5), uint8(0), uint8(0), uint8(1), uint8(0), uint8(1))
	f.Add(uint8(33), uint8(75), uint8(40), uint8(3), uint8(2), uint8(2), uint8(1), uint8(2))
	f.Add(uint8(1), uint8(1), uint8(0), uint8(1), uint8(3), uint8(0), uint8(2), uint8(3))
	scalars := []float32{0, 1, -1, 0.5, 2.5}
	f.Fuzz(func(t *testing.T, m, n, k, flags, pad, alpha, beta, threads uint8) {
		kn := kernels[int(flags>>2)%len(kernels)]
		if flags&16 != 0 {
			kn = tiny(kn)
		}
		if flags&32 != 0 {
			kn = packed(kn)
		}
		tc := gemmCase{
			transA: flags&1 != 0, transB: flags&2 != 0,
			m: int(m%96) + 1, n: int(n%96) + 1, k: int(k % 96), pad: int(pad % 5),
			alpha: scalars[int(alpha)%len(scalars)], beta: scalars[int(beta)%len(scalars)],
		}
		tc.run(t, uint64(m)<<8|uint64(n), with(kn, int(threads%4)+1))
	})
}
