package shard

import (
	"math"
	"math/rand/v2"
)

// Normalizer holds the per-channel mean and standard deviation of pixel
// values scaled to [0, 1]; a pixel value v becomes (v/255 - Mean) / Std.
type Normalizer struct {
	// Mean and Std are per channel (R, G, B) on the [0, 1] scale.
	Mean, Std [3]float32
}

// ComputeNormalizer measures the per-channel mean and standard deviation of
// the images idx (normally the training split). A channel with zero spread
// gets Std 1, so normalising never divides by zero.
func ComputeNormalizer(d *Dataset, idx []int) Normalizer {
	var sum, sq [3]float64
	var n float64
	for _, i := range idx {
		px := d.Image(i)
		for p := 0; p < len(px); p += 3 {
			for c := range 3 {
				v := float64(px[p+c]) / 255
				sum[c] += v
				sq[c] += v * v
			}
		}
		n += float64(len(px) / 3)
	}
	nz := Normalizer{Std: [3]float32{1, 1, 1}}
	if n == 0 {
		return nz
	}
	for c := range 3 {
		mean := sum[c] / n
		nz.Mean[c] = float32(mean)
		if v := sq[c]/n - mean*mean; v > 1e-12 {
			nz.Std[c] = float32(math.Sqrt(v))
		}
	}
	return nz
}

// Augment is the training augmentation of the paper: a random crop of the
// image padded with Pad black pixels on every side (like torchvision's
// RandomCrop(size, padding=Pad)), then a horizontal flip with probability
// one half when Flip is set. The zero value is no augmentation.
type Augment struct {
	// Pad is the padding of the random crop in pixels (0 = no crop).
	Pad int
	// Flip enables random horizontal flips.
	Flip bool
}

// DefaultAugment returns the paper's augmentation: padding 4 and flips.
func DefaultAugment() Augment { return Augment{Pad: 4, Flip: true} }

// view says where sample pixel (y, x) comes from: the augmented source
// pixel is (y+dy, x+dx) (outside the image = padding) after an optional
// horizontal flip.
type view struct {
	dx, dy int
	flip   bool
}

// draw picks one image's augmentation from rng: dx, then dy (each uniform
// in [-Pad, Pad]) when Pad > 0, then the flip when Flip is set.
func (a Augment) draw(rng *rand.Rand) view {
	var v view
	if a.Pad > 0 {
		v.dx = rng.IntN(2*a.Pad+1) - a.Pad
		v.dy = rng.IntN(2*a.Pad+1) - a.Pad
	}
	if a.Flip {
		v.flip = rng.IntN(2) == 1
	}
	return v
}

// render writes the augmented image into out (Size*Size*3 HWC); padding is
// value 0 (black, before normalisation, as in torchvision).
func (v view) render(out, px []uint8, s int) {
	for y := range s {
		sy := y + v.dy
		for x := range s {
			sx := x
			if v.flip {
				sx = s - 1 - x
			}
			sx += v.dx
			o := out[(y*s+x)*3 : (y*s+x)*3+3]
			if sy < 0 || sy >= s || sx < 0 || sx >= s {
				o[0], o[1], o[2] = 0, 0, 0
				continue
			}
			copy(o, px[(sy*s+sx)*3:(sy*s+sx)*3+3])
		}
	}
}
