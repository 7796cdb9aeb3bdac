package model

import (
	"context"
	"fmt"
	"math"
)

// BatchNorm constants, as PyTorch's BatchNorm2d defaults.
const (
	bnEps      = 1e-5
	bnMomentum = 0.1
)

// bnReLU is BatchNorm2d followed by ReLU, fused, on channels-last activations [M x C].
// In training mode it normalises with the batch statistics (synchronised across replicas when a
// Reducer is set) and updates the running statistics with momentum 0.1 and the unbiased variance.
type bnReLU struct {
	c                int
	gamma, beta      []float32 // parameter views
	dgamma, dbeta    []float32 // gradient views
	rmean, rvar, nbt []float32 // state views (nbt has one element)
	mean, invstd     []float32 // statistics of the last forward (running ones in eval)
	scale, shift     []float32 // y*scale + shift == gamma*(y-mean)*invstd + beta
	count            float64   // samples behind the statistics (global with a reducer)
	trained          bool      // the last forward used batch statistics
	sums             []float64
	red              []float32
	ga, gk, gofs     []float32 // per-channel coefficients of the input gradient
	k                []float32 // shift of the one-pass statistics
	cumulative       bool      // running statistics are the plain average of the batches' (RecalibrateBN)
}

// newBNReLU returns a fused BatchNorm+ReLU over c channels; parameter views are bound later.
func newBNReLU(c int) *bnReLU {
	return &bnReLU{c: c, mean: make([]float32, c), invstd: make([]float32, c), scale: make([]float32, c),
		shift: make([]float32, c), sums: make([]float64, 2*c), red: make([]float32, 2*c+1),
		ga: make([]float32, c), gk: make([]float32, c), gofs: make([]float32, c), k: make([]float32, c)}
}

// forward normalises y ([m x c]) into z = relu(bn(y)); part is reduction scratch.
func (b *bnReLU) forward(ctx context.Context, y, z []float32, m int, train bool, r Reducer, part []float32) error {
	if err := b.prepare(ctx, y, m, train, r, part); err != nil {
		return err
	}
	applyBNReLU(y, z, b.scale, b.shift, m)
	return nil
}

// prepare sets the per-channel scale and shift of bn(y) = y*scale + shift: from the batch
// statistics of y ([m x c]) in training (updating the running ones), else from the running ones.
func (b *bnReLU) prepare(ctx context.Context, y []float32, m int, train bool, r Reducer, part []float32) error {
	b.trained = train
	if train {
		if err := b.batchStats(ctx, y, m, r, part); err != nil {
			return err
		}
	} else {
		for c := range b.c {
			b.mean[c] = b.rmean[c]
			b.invstd[c] = float32(1 / math.Sqrt(float64(b.rvar[c])+bnEps))
		}
	}
	for c := range b.c {
		b.scale[c] = b.gamma[c] * b.invstd[c]
		b.shift[c] = b.beta[c] - b.mean[c]*b.scale[c]
	}
	return nil
}

// batchStats computes the (synchronised) batch mean and inverse std and updates the running
// statistics. One pass sums d = y - K and d*d with the shift K = running mean (identical on every
// replica); when the batch mean is far from K relative to the spread, a second pass centred on
// the batch mean avoids the cancellation.
func (b *bnReLU) batchStats(ctx context.Context, y []float32, m int, r Reducer, part []float32) error {
	copy(b.k, b.rmean)
	if err := b.shiftedSums(ctx, y, m, r, part); err != nil {
		return err
	}
	if b.momentsFromSums() {
		copy(b.k, b.mean)
		if err := b.shiftedSums(ctx, y, m, r, part); err != nil {
			return err
		}
		b.momentsFromSums()
	}
	b.updateRunning()
	return nil
}

// shiftedSums sets sums to the per-channel sums of d = y - k and d*d and count to the number of
// samples, reduced across replicas when r is set.
func (b *bnReLU) shiftedSums(ctx context.Context, y []float32, m int, r Reducer, part []float32) error {
	C, k := b.c, b.k
	blockReduce(m, C, 2, part, b.sums, func(r0, r1 int, acc []float32) {
		bnStats(y[r0*C:r1*C], k, acc[:C], acc[C:2*C], r1-r0)
	})
	b.count = float64(m)
	if r != nil {
		return b.allReduce(ctx, r, 2*C, true)
	}
	return nil
}

// momentsFromSums sets mean and the biased variance (into sums[C:]) from the shifted sums and
// reports whether the shift was too far from the mean for an accurate variance.
func (b *bnReLU) momentsFromSums() (illConditioned bool) {
	C, n := b.c, b.count
	for c := range C {
		d := b.sums[c] / n
		v := max(b.sums[C+c]/n-d*d, 0)
		b.mean[c] = float32(float64(b.k[c]) + d)
		b.sums[C+c] = v
		if d*d > 1e3*max(v, 1e-12) {
			illConditioned = true
		}
	}
	return illConditioned
}

// updateRunning sets invstd from the biased variance in sums[C:] and moves the running statistics
// (by momentum 0.1, or to the cumulative average of the batches in RecalibrateBN).
func (b *bnReLU) updateRunning() {
	n, C := b.count, b.c
	mom := bnMomentum
	if b.cumulative { // PyTorch's momentum=None: the k-th batch weighs 1/k
		mom = 1 / (float64(b.nbt[0]) + 1)
	}
	for c := range C {
		v := b.sums[C+c]
		b.invstd[c] = float32(1 / math.Sqrt(v+bnEps))
		unbiased := v
		if n > 1 {
			unbiased = v * n / (n - 1)
		}
		b.rmean[c] = float32((1-mom)*float64(b.rmean[c]) + mom*float64(b.mean[c]))
		b.rvar[c] = float32((1-mom)*float64(b.rvar[c]) + mom*unbiased)
	}
	b.nbt[0]++
}

// allReduce sums the first k*C entries of sums (and, with count, the sample count) across
// replicas through r.
func (b *bnReLU) allReduce(ctx context.Context, r Reducer, width int, count bool) error {
	buf := b.red[:width]
	if count {
		buf = b.red[:width+1]
		buf[width] = float32(b.count)
	}
	for j := range width {
		buf[j] = float32(b.sums[j])
	}
	if err := r.AllReduceSum(ctx, buf); err != nil {
		return fmt.Errorf("all-reduce batchnorm statistics: %w", err)
	}
	for j := range width {
		b.sums[j] = float64(buf[j])
	}
	if count {
		b.count = float64(buf[width])
	}
	return nil
}

// applyBNReLU writes z = max(0, y*scale + shift) per channel.
func applyBNReLU(y, z, scale, shift []float32, m int) {
	C := len(scale)
	parallelFor(m, 256, func(lo, hi int) {
		bnApply(y[lo*C:hi*C], z[lo*C:hi*C], scale, shift, hi-lo)
	})
}

// applyBN writes z = y*scale + shift per channel (a BatchNorm without ReLU: a shortcut's).
func applyBN(y, z, scale, shift []float32, m int) {
	C := len(scale)
	parallelFor(m, 256, func(lo, hi int) {
		bnAffine(y[lo*C:hi*C], z[lo*C:hi*C], scale, shift, hi-lo)
	})
}

// applyBNAddReLU writes z = max(0, y*scale + shift + res) per channel (z may be res): the end
// of a residual block.
func applyBNAddReLU(y, res, z, scale, shift []float32, m int) {
	C := len(scale)
	parallelFor(m, 256, func(lo, hi int) {
		bnAddReLU(y[lo*C:hi*C], res[lo*C:hi*C], z[lo*C:hi*C], scale, shift, hi-lo)
	})
}

// maskReLU zeroes g where z is not positive (the ReLU's backward, given its output).
func maskReLU(g, z []float32) {
	parallelFor(len(g), 1<<14, func(lo, hi int) { reluMask(g[lo:hi], z[lo:hi]) })
}

// addInto adds src into dst element-wise, in parallel.
func addInto(dst, src []float32) {
	parallelFor(len(dst), 1<<14, func(lo, hi int) { addTo(dst[lo:hi], src[lo:hi]) })
}

// backward turns dz (gradient of z, [m x c]) in place into the gradient of y, and accumulates
// the gradients of gamma and beta (local sums; the ring sums them across replicas).
func (b *bnReLU) backward(ctx context.Context, dz, y, z []float32, m int, r Reducer, part []float32) error {
	C := b.c
	mean, invstd := b.mean, b.invstd
	blockReduce(m, C, 2, part, b.sums, func(r0, r1 int, acc []float32) {
		bnBackReduce(dz[r0*C:r1*C], y[r0*C:r1*C], z[r0*C:r1*C], mean, acc[:C], acc[C:2*C], r1-r0)
	})
	for c := range C {
		b.sums[C+c] *= float64(invstd[c])
	}
	for c := range C {
		b.dbeta[c] += float32(b.sums[c])
		b.dgamma[c] += float32(b.sums[C+c])
	}
	if !b.trained {
		applyScale(dz, b.scale, m)
		return nil
	}
	if r != nil {
		if err := b.allReduce(ctx, r, 2*C, false); err != nil {
			return err
		}
	}
	b.inputGrad(dz, y, m)
	return nil
}

// inputGrad writes dx = a*dy - k*y + o per channel into dy, the training-mode BatchNorm input
// gradient gamma*invstd*(dy - mean(dy) - xhat*mean(dy*xhat)) with the means over all samples.
func (b *bnReLU) inputGrad(dy, y []float32, m int) {
	C := b.c
	a, k, o := b.ga, b.gk, b.gofs
	for c := range C {
		ac := float64(b.gamma[c]) * float64(b.invstd[c])
		kc := ac * float64(b.invstd[c]) * b.sums[C+c] / b.count
		a[c] = float32(ac)
		k[c] = float32(kc)
		o[c] = float32(kc*float64(b.mean[c]) - ac*b.sums[c]/b.count)
	}
	parallelFor(m, 256, func(lo, hi int) {
		bnInputGrad(dy[lo*C:hi*C], y[lo*C:hi*C], a, k, o, hi-lo)
	})
}

// applyScale multiplies dy per channel by scale (eval-mode BatchNorm backward).
func applyScale(dy, scale []float32, m int) {
	C := len(scale)
	parallelFor(m, 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := dy[i*C : (i+1)*C]
			for c := range g {
				g[c] *= scale[c]
			}
		}
	})
}
