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
}

// newBNReLU returns a fused BatchNorm+ReLU over c channels; parameter views are bound later.
func newBNReLU(c int) *bnReLU {
	return &bnReLU{c: c, mean: make([]float32, c), invstd: make([]float32, c), scale: make([]float32, c),
		shift: make([]float32, c), sums: make([]float64, 2*c), red: make([]float32, 2*c+1),
		ga: make([]float32, c), gk: make([]float32, c), gofs: make([]float32, c)}
}

// forward normalises y ([m x c]) into z = relu(bn(y)); part is reduction scratch.
func (b *bnReLU) forward(ctx context.Context, y, z []float32, m int, train bool, r Reducer, part []float32) error {
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
	applyBNReLU(y, z, b.scale, b.shift, m)
	return nil
}

// batchStats computes the (synchronised) batch mean and inverse std with a centred second pass
// and updates the running statistics.
func (b *bnReLU) batchStats(ctx context.Context, y []float32, m int, r Reducer, part []float32) error {
	C := b.c
	blockReduce(m, C, 1, part, b.sums, func(r0, r1 int, acc []float32) {
		for i := r0; i < r1; i++ {
			for c, v := range y[i*C : (i+1)*C] {
				acc[c] += v
			}
		}
	})
	b.count = float64(m)
	if r != nil {
		if err := b.allReduce(ctx, r, C, true); err != nil {
			return err
		}
	}
	for c := range C {
		b.mean[c] = float32(b.sums[c] / b.count)
	}
	mean := b.mean
	blockReduce(m, C, 1, part, b.sums, func(r0, r1 int, acc []float32) {
		for i := r0; i < r1; i++ {
			for c, v := range y[i*C : (i+1)*C] {
				d := v - mean[c]
				acc[c] += d * d
			}
		}
	})
	if r != nil {
		if err := b.allReduce(ctx, r, C, false); err != nil {
			return err
		}
	}
	b.updateRunning()
	return nil
}

// updateRunning sets invstd from the biased variance in sums and moves the running statistics.
func (b *bnReLU) updateRunning() {
	n := b.count
	for c := range b.c {
		v := b.sums[c] / n
		b.invstd[c] = float32(1 / math.Sqrt(v+bnEps))
		unbiased := v
		if n > 1 {
			unbiased = v * n / (n - 1)
		}
		b.rmean[c] = float32((1-bnMomentum)*float64(b.rmean[c]) + bnMomentum*float64(b.mean[c]))
		b.rvar[c] = float32((1-bnMomentum)*float64(b.rvar[c]) + bnMomentum*unbiased)
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
		for i := lo; i < hi; i++ {
			yr, zr := y[i*C:(i+1)*C], z[i*C:(i+1)*C]
			for c, v := range yr {
				zr[c] = max(0, v*scale[c]+shift[c])
			}
		}
	})
}

// backward turns dz (gradient of z, [m x c]) in place into the gradient of y, and accumulates
// the gradients of gamma and beta (local sums; the ring sums them across replicas).
func (b *bnReLU) backward(ctx context.Context, dz, y, z []float32, m int, r Reducer, part []float32) error {
	C := b.c
	mean, invstd := b.mean, b.invstd
	blockReduce(m, C, 2, part, b.sums, func(r0, r1 int, acc []float32) {
		sdy, sdx := acc[:C], acc[C:]
		for i := r0; i < r1; i++ {
			g, yr, zr := dz[i*C:(i+1)*C], y[i*C:(i+1)*C], z[i*C:(i+1)*C]
			for c := range g {
				if zr[c] <= 0 {
					g[c] = 0
					continue
				}
				sdy[c] += g[c]
				sdx[c] += g[c] * (yr[c] - mean[c]) * invstd[c]
			}
		}
	})
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
		for i := lo; i < hi; i++ {
			g, yr := dy[i*C:(i+1)*C], y[i*C:(i+1)*C]
			for c := range g {
				g[c] = a[c]*g[c] - k[c]*yr[c] + o[c]
			}
		}
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
