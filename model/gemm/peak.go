package gemm

import (
	"sync"
	"time"
)

// peakChains is the number of independent multiply-add chains of the peak loops (enough to
// hide the FMA latency on two ports), and peakIters the iterations of one timed call.
const (
	peakChains = 12
	peakIters  = 1 << 20
)

// Peak measures the machine's single-precision FMA ceiling in GFLOPS on threads goroutines
// for about d: each runs the widest multiply-add loop this CPU has (independent chains of
// register-only FMAs, nothing else) and the rates are summed. It names the instruction set
// ("avx512", "avx2" or "none", which measures nothing). Compare a benchmark's achieved rate
// with this figure taken in the same run: these machines differ and are shared.
func Peak(threads int, d time.Duration) (gflops float64, isa string) {
	loop, lanes, isa := peakLoop()
	if loop == nil {
		return 0, isa
	}
	rates := make([]float64, max(threads, 1))
	var wg sync.WaitGroup
	for i := range rates {
		wg.Go(func() {
			calls, start := 0, time.Now()
			for time.Since(start) < d || calls == 0 {
				loop(peakIters)
				calls++
			}
			flops := float64(calls) * peakIters * peakChains * float64(lanes) * 2
			rates[i] = flops / time.Since(start).Seconds() / 1e9
		})
	}
	wg.Wait()
	for _, r := range rates {
		gflops += r
	}
	return gflops, isa
}
