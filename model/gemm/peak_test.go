package gemm

import (
	"testing"
	"time"
)

// TestPeakMeasures checks Peak names an instruction set and, when it has one, a positive rate.
func TestPeakMeasures(t *testing.T) {
	g, isa := Peak(1, 10*time.Millisecond)
	if isa == "" || (isa != "none" && g <= 0) {
		t.Fatalf("Peak = %g GFLOPS, %q", g, isa)
	}
	t.Logf("%s: %.1f GFLOPS on one goroutine", isa, g)
}
