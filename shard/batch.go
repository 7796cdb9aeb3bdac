package shard

import (
	"math"
	"math/rand/v2"

	"github.com/whorl-ml/whorl/internal/validate"
)

// Normalizer holds the per-channel mean and standard deviation of pixel
// values scaled to [0, 1]; a pixel value v becomes (v/255 - Mean) / Std.
type Normalizer struct {
	// Mean and Std are per channel (R, G, B) on the [0, 1] scale.
	Mean, Std [3]float32
}

// ComputeNormalizer measures the per-channel mean and standard deviation of
// the images idx (normally the training split). A channel with zero spread
// gets Std 1, so normalising never divides by zero. It is the Normalizer of
// the images' ChannelSums added up, so a scan that keeps only the sums
// (Scan) gives the same one, bit for bit.
func ComputeNormalizer(d *Dataset, idx []int) Normalizer {
	var s ChannelSums
	for _, i := range idx {
		s.Add(SumChannels(d.Image(i)))
	}
	return s.Normalizer()
}

// ChannelSums are the per-channel sums of pixel values and of their
// squares over some images, and their number of pixels: exact integers, so
// they add up in any order to the same figures.
type ChannelSums struct {
	Sum, Sq [3]uint64
	Pixels  uint64
}

// SumChannels returns the ChannelSums of HWC RGB pixels.
func SumChannels(px []uint8) ChannelSums {
	var s ChannelSums
	for p := 0; p+2 < len(px); p += 3 {
		for c := range 3 {
			v := uint64(px[p+c])
			s.Sum[c] += v
			s.Sq[c] += v * v
		}
	}
	s.Pixels = uint64(len(px) / 3)
	return s
}

// Add adds o's sums to s.
func (s *ChannelSums) Add(o ChannelSums) {
	for c := range 3 {
		s.Sum[c] += o.Sum[c]
		s.Sq[c] += o.Sq[c]
	}
	s.Pixels += o.Pixels
}

// Normalizer is the mean and standard deviation on the [0, 1] scale the
// sums give (Std 1 for a channel without spread, and for no pixels).
func (s ChannelSums) Normalizer() Normalizer {
	nz := Normalizer{Std: [3]float32{1, 1, 1}}
	if s.Pixels == 0 {
		return nz
	}
	n := float64(s.Pixels)
	for c := range 3 {
		mean := float64(s.Sum[c]) / (255 * n)
		nz.Mean[c] = float32(mean)
		if v := float64(s.Sq[c])/(255*255*n) - mean*mean; v > 1e-12 {
			nz.Std[c] = float32(math.Sqrt(v))
		}
	}
	return nz
}

// Augment is the training augmentation: the paper's (a random crop of the
// image padded with Pad black pixels on every side, like torchvision's
// RandomCrop(size, padding=Pad), then a horizontal flip with probability
// one half when Flip is set) and SimCLR's (Crop, Jitter, Gray). The zero
// value is no augmentation.
//
// An image is rendered in this order: the stored image (side d.Size), or
// the region Crop draws from it, is resampled to OutSize x OutSize (area
// filter when shrinking, bilinear when enlarging); the pad-crop and the
// flip apply at that size; then Jitter, then Gray; then normalisation.
// Without Crop and at OutSize d.Size nothing is resampled: with Pad and
// Flip alone the images and draws are exactly those of before Size, Crop,
// Jitter and Gray existed.
//
// One image's draws from its generator, in order: Crop's region (see
// ResizedCrop), dx then dy (Pad > 0), the flip (Flip), Jitter's coin and
// factors (see ColorJitter), Gray's coin. A draw whose outcome is fixed (a
// uniform over an interval of zero width, a probability of 0 or 1) takes
// nothing from the generator, so an augmentation without random parts
// never touches it (it may be nil).
type Augment struct {
	// Pad is the padding of the random crop in pixels (0 = no crop),
	// applied at OutSize. It must be 0 with Crop, which replaces it.
	Pad int
	// Flip enables random horizontal flips.
	Flip bool
	// Size is the side of the rendered images in pixels; 0 means the
	// dataset's (d.Size). A dataset stored larger than the training size
	// (the "store size") is rendered down to Size (area filter); one
	// stored smaller is enlarged (bilinear).
	Size int
	// Crop is the random-resized crop; its zero value takes none.
	Crop ResizedCrop
	// Jitter is the colour jitter; its zero value applies none.
	Jitter ColorJitter
	// Gray is the probability of turning an image to grayscale: after
	// Jitter, each pixel's three channels become its ITU-R 601 luma
	// 0.299 R + 0.587 G + 0.114 B.
	Gray float64
}

// DefaultAugment returns the paper's augmentation: padding 4 and flips.
func DefaultAugment() Augment { return Augment{Pad: 4, Flip: true} }

// OutSize is the side of the images a batch function renders from d:
// Size, or d.Size when Size is 0.
func (a Augment) OutSize(d *Dataset) int {
	if a.Size > 0 {
		return a.Size
	}
	return d.Size
}

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)). The batch functions
// panic on an augmentation that fails it.
func (a Augment) Validate() error {
	p := validate.New(ErrConfig, "Augment.")
	validate.InRange(p, "Pad", a.Pad, 0, MaxSize)
	validate.InRange(p, "Size", a.Size, 0, MaxSize)
	if a.Crop.on() {
		a.Crop.validate(p)
		if a.Pad != 0 {
			p.Addf("Pad", "= %d, must be 0 with Crop", a.Pad)
		}
	}
	a.Jitter.validate(p)
	validate.InRange(p, "Gray", a.Gray, 0, 1)
	return p.Err()
}

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

// render writes the augmented image into out (s*s*3 HWC, like px); padding is
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
