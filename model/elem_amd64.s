#include "textflag.h"

// Row kernels of the fused BatchNorm+ReLU layer on channels-last data: rows x c
// float32 values, c a multiple of 8, per-channel vectors of length c. AVX2 + FMA.

// func bnApplyAVX2(y, z, scale, shift *float32, rows, c int)
// z = max(0, y*scale + shift)
TEXT ·bnApplyAVX2(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), SI
	MOVQ z+8(FP), DI
	MOVQ scale+16(FP), R8
	MOVQ shift+24(FP), R9
	MOVQ rows+32(FP), CX
	MOVQ c+40(FP), DX
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JZ applydone
applyrow:
	XORQ AX, AX
applyloop:
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS (R8)(AX*4), Y1
	VFMADD213PS (R9)(AX*4), Y1, Y0
	VMAXPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	CMPQ AX, DX
	JL applyloop
	LEAQ (SI)(DX*4), SI
	LEAQ (DI)(DX*4), DI
	DECQ CX
	JNZ applyrow
applydone:
	VZEROUPPER
	RET

// func bnStatsAVX2(y, k, s1, s2 *float32, rows, c int)
// d = y - k; s1 += d; s2 += d*d
TEXT ·bnStatsAVX2(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), SI
	MOVQ k+8(FP), R8
	MOVQ s1+16(FP), R9
	MOVQ s2+24(FP), R10
	MOVQ rows+32(FP), CX
	MOVQ c+40(FP), DX
	TESTQ CX, CX
	JZ statsdone
statsrow:
	XORQ AX, AX
statsloop:
	VMOVUPS (SI)(AX*4), Y0
	VSUBPS (R8)(AX*4), Y0, Y0
	VADDPS (R9)(AX*4), Y0, Y1
	VMOVUPS Y1, (R9)(AX*4)
	VMOVUPS (R10)(AX*4), Y2
	VFMADD231PS Y0, Y0, Y2
	VMOVUPS Y2, (R10)(AX*4)
	ADDQ $8, AX
	CMPQ AX, DX
	JL statsloop
	LEAQ (SI)(DX*4), SI
	DECQ CX
	JNZ statsrow
statsdone:
	VZEROUPPER
	RET

// func bnBackReduceAVX2(gp, y, z, mean, sdy, sdx *float32, rows, c int)
// g = z > 0 ? g : 0; sdy += g; sdx += g*(y - mean)
TEXT ·bnBackReduceAVX2(SB), NOSPLIT, $0-64
	MOVQ gp+0(FP), SI
	MOVQ y+8(FP), R8
	MOVQ z+16(FP), DI
	MOVQ mean+24(FP), R9
	MOVQ sdy+32(FP), R10
	MOVQ sdx+40(FP), R11
	MOVQ rows+48(FP), CX
	MOVQ c+56(FP), DX
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JZ backdone
backrow:
	XORQ AX, AX
backloop:
	VMOVUPS (DI)(AX*4), Y1
	VCMPPS $0x1e, Y15, Y1, Y2
	VANDPS (SI)(AX*4), Y2, Y0
	VMOVUPS Y0, (SI)(AX*4)
	VADDPS (R10)(AX*4), Y0, Y3
	VMOVUPS Y3, (R10)(AX*4)
	VMOVUPS (R8)(AX*4), Y4
	VSUBPS (R9)(AX*4), Y4, Y4
	VMOVUPS (R11)(AX*4), Y5
	VFMADD231PS Y4, Y0, Y5
	VMOVUPS Y5, (R11)(AX*4)
	ADDQ $8, AX
	CMPQ AX, DX
	JL backloop
	LEAQ (SI)(DX*4), SI
	LEAQ (R8)(DX*4), R8
	LEAQ (DI)(DX*4), DI
	DECQ CX
	JNZ backrow
backdone:
	VZEROUPPER
	RET

// func bnInputGradAVX2(gp, y, a, k, o *float32, rows, c int)
// g = a*g - k*y + o
TEXT ·bnInputGradAVX2(SB), NOSPLIT, $0-56
	MOVQ gp+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ a+16(FP), R9
	MOVQ k+24(FP), R10
	MOVQ o+32(FP), R11
	MOVQ rows+40(FP), CX
	MOVQ c+48(FP), DX
	TESTQ CX, CX
	JZ graddone
gradrow:
	XORQ AX, AX
gradloop:
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS (R9)(AX*4), Y1
	VFMADD213PS (R11)(AX*4), Y1, Y0
	VMOVUPS (DI)(AX*4), Y2
	VFNMADD231PS (R10)(AX*4), Y2, Y0
	VMOVUPS Y0, (SI)(AX*4)
	ADDQ $8, AX
	CMPQ AX, DX
	JL gradloop
	LEAQ (SI)(DX*4), SI
	LEAQ (DI)(DX*4), DI
	DECQ CX
	JNZ gradrow
graddone:
	VZEROUPPER
	RET

// func maxStepAVX2(out *float32, arg *int32, x *float32, idx int32, c int)
// where x > out: out = x, arg = idx (strict comparison keeps the first maximum)
TEXT ·maxStepAVX2(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ arg+8(FP), R8
	MOVQ x+16(FP), SI
	MOVL idx+24(FP), R9
	VMOVD R9, X3
	VPBROADCASTD X3, Y3
	MOVQ c+32(FP), DX
	XORQ AX, AX
maxloop:
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS (DI)(AX*4), Y1
	VCMPPS $0x1e, Y1, Y0, Y2
	VBLENDVPS Y2, Y0, Y1, Y1
	VMOVUPS Y1, (DI)(AX*4)
	VMOVUPS (R8)(AX*4), Y4
	VBLENDVPS Y2, Y3, Y4, Y4
	VMOVUPS Y4, (R8)(AX*4)
	ADDQ $8, AX
	CMPQ AX, DX
	JL maxloop
	VZEROUPPER
	RET

// func addAVX2(dst, src *float32, n int)
// dst += src; n a multiple of 8
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	XORQ AX, AX
addloop:
	VMOVUPS (DI)(AX*4), Y0
	VADDPS (SI)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	CMPQ AX, DX
	JL addloop
	VZEROUPPER
	RET
