// Package gemm is the single-precision matrix multiply (SGEMM) under whorl's model engine.
//
// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major float32 matrices. Work is split
// among goroutines along the rows and columns of C only, never along the summed dimension K, and
// each element of C accumulates its K products in one fixed order, so the result is bit-identical
// whatever SetThreads says.
package gemm
