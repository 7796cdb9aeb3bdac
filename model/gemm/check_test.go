package gemm

import (
	"fmt"
	"strings"
	"testing"
)

func TestSgemmBadArguments(t *testing.T) {
	s := make([]float32, 12)
	for _, tc := range []struct {
		name           string
		transA, transB bool
		m, n, k        int
		a              []float32
		lda            int
		b              []float32
		ldb            int
		c              []float32
		ldc            int
		want           string
	}{
		{"negative m", false, false, -1, 2, 2, s, 2, s, 2, s, 2, "negative dimension"},
		{"lda below k", false, false, 2, 2, 3, s, 2, s, 2, s, 2, "lda=2"},
		{"lda below m when transposed", true, false, 3, 2, 2, s, 2, s, 2, s, 2, "lda=2"},
		{"ldb below k when transposed", false, true, 2, 2, 3, s, 3, s, 2, s, 2, "ldb=2"},
		{"ldc below n", false, false, 2, 3, 2, s, 2, s, 3, s, 2, "ldc=2"},
		{"short a", false, false, 4, 2, 4, s[:3], 4, s, 2, s, 2, "len(a)=3"},
		{"short c", false, false, 3, 4, 1, s, 1, s, 4, s[:11], 4, "len(c)=11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, tc.want) {
					t.Fatalf("panic %q, want one mentioning %q", msg, tc.want)
				}
			}()
			Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 1, tc.a, tc.lda, tc.b, tc.ldb, 0, tc.c, tc.ldc)
		})
	}
}

func TestSgemmEmpty(t *testing.T) {
	c := []float32{7}
	Sgemm(false, false, 0, 0, 5, 1, nil, 5, nil, 1, 0, nil, 1) // nothing to do, nothing read
	Sgemm(false, false, 1, 1, 0, 1, nil, 1, nil, 1, 2, c, 1)   // k = 0: C = beta*C
	if c[0] != 14 {
		t.Fatalf("k=0, beta=2: C = %g, want 14", c[0])
	}
}
