package shard

import (
	"math"
	"math/rand/v2"

	"github.com/whorl-ml/whorl/internal/validate"
)

// ResizedCrop is torchvision's RandomResizedCrop: a region of the stored image whose area is a
// fraction in [MinScale, MaxScale] of the image's and whose aspect ratio (width/height) is drawn
// log-uniformly in [MinRatio, MaxRatio], resampled to the output size. MaxScale 0 means no crop.
//
// Each of up to 10 attempts draws, as torchvision does, the area
// A*U(MinScale, MaxScale) (A = n*n, n the stored side), then the ratio as
// exp(U(ln MinRatio, ln MaxRatio)), and takes w = sqrt(area*ratio),
// h = sqrt(area/ratio) if both are at most n; the position is then drawn,
// y0 from U(0, n-h), then x0 from U(0, n-w). If no attempt fits, the
// region is the centred one of the largest size whose ratio is 1 clamped
// to [MinRatio, MaxRatio]. Unlike torchvision, w, h, x0 and y0 are real
// numbers (no rounding to pixels: the stored images are small), and the
// region [x0, x0+w) x [y0, y0+h) is resampled with fractional edges.
// Valid values: 0 < MinScale <= MaxScale <= 1 and 0 < MinRatio <=
// MaxRatio.
type ResizedCrop struct {
	MinScale, MaxScale float64
	MinRatio, MaxRatio float64
}

// ColorJitter is torchvision's ColorJitter without hue: each strength s draws a factor uniform in
// [max(0, 1-s), 1+s]; applied with probability Prob (SimCLR: 0.8).
//
// Draws: the coin, then, if it is heads, the factors of the non-zero
// strengths in the order brightness, contrast, saturation, which is also
// the fixed order they apply in (torchvision's order is random). With
// factor f and luma l = 0.299 R + 0.587 G + 0.114 B (ITU-R 601):
// brightness makes each channel value v f*v; contrast f*v + (1-f)*m, m
// the mean luma of the image (after brightness); saturation f*v + (1-f)*l
// of the pixel's luma. Each step clamps to [0, 255]; values stay float32
// through the steps and Gray and are rounded to bytes once at the end.
// Valid values: strengths >= 0, 0 <= Prob <= 1; zero strengths or Prob 0
// apply nothing.
type ColorJitter struct {
	Brightness, Contrast, Saturation float64
	Prob                             float64
}

// Luma weights (ITU-R 601) of R, G and B.
const lumaR, lumaG, lumaB = 0.299, 0.587, 0.114

// box is a region of an image: [x0, x0+w) x [y0, y0+h), in pixels.
type box struct {
	x0, y0, w, h float64
}

// sample is one image's draw of an Augment.
type sample struct {
	// region is the part of the stored image resampled to the output:
	// Crop's, or the whole image.
	region box
	view   view
	tone   tone
}

// drawSample draws one image's augmentation from rng, for a stored image
// of side n, in the order Augment documents.
func (a Augment) drawSample(rng *rand.Rand, n int) sample {
	s := sample{region: box{0, 0, float64(n), float64(n)}}
	if a.Crop.on() {
		s.region = a.Crop.draw(rng, float64(n))
	}
	s.view = a.draw(rng)
	s.tone = a.Jitter.draw(rng)
	s.tone.gray = coin(rng, a.Gray)
	return s
}

// on reports whether c takes a crop.
func (c ResizedCrop) on() bool { return c.MaxScale != 0 }

// draw picks a region of an image of side n (torchvision's get_params with
// real-valued sizes and positions).
func (c ResizedCrop) draw(rng *rand.Rand, n float64) box {
	lr0, lr1 := math.Log(c.MinRatio), math.Log(c.MaxRatio)
	for range 10 {
		area := n * n * uniform(rng, c.MinScale, c.MaxScale)
		ratio := math.Exp(uniform(rng, lr0, lr1))
		w, h := math.Sqrt(area*ratio), math.Sqrt(area/ratio)
		if w > 0 && h > 0 && w <= n && h <= n {
			y0 := uniform(rng, 0, n-h)
			return box{x0: uniform(rng, 0, n-w), y0: y0, w: w, h: h}
		}
	}
	return c.centre(n)
}

// centre is the fallback region: centred, of ratio 1 clamped to
// [MinRatio, MaxRatio].
func (c ResizedCrop) centre(n float64) box {
	w, h := n, n
	switch {
	case c.MinRatio > 1:
		h = n / c.MinRatio
	case c.MaxRatio < 1:
		w = n * c.MaxRatio
	}
	return box{x0: (n - w) / 2, y0: (n - h) / 2, w: w, h: h}
}

func (c ResizedCrop) validate(p *validate.Problems) {
	if !(c.MaxScale > 0 && c.MaxScale <= 1) {
		p.Addf("Crop.MaxScale", "= %g, must be in (0, 1], or 0 for no crop", c.MaxScale)
	}
	if !(c.MinScale > 0 && c.MinScale <= c.MaxScale) {
		p.Addf("Crop.MinScale", "= %g, must be in (0, MaxScale]", c.MinScale)
	}
	if !(c.MinRatio > 0 && c.MinRatio <= c.MaxRatio && !math.IsInf(c.MaxRatio, 1)) {
		p.Addf("Crop.MinRatio", "= %g and MaxRatio = %g, must satisfy 0 < MinRatio <= MaxRatio < +Inf", c.MinRatio, c.MaxRatio)
	}
}

// on reports whether j can change an image.
func (j ColorJitter) on() bool {
	return j.Prob > 0 && (j.Brightness > 0 || j.Contrast > 0 || j.Saturation > 0)
}

// draw draws j's coin and factors (see ColorJitter).
func (j ColorJitter) draw(rng *rand.Rand) tone {
	t := tone{bright: 1, contrast: 1, sat: 1}
	if !j.on() || !coin(rng, j.Prob) {
		return t
	}
	t.jitter = true
	t.bright = factor(rng, j.Brightness)
	t.contrast = factor(rng, j.Contrast)
	t.sat = factor(rng, j.Saturation)
	return t
}

func (j ColorJitter) validate(p *validate.Problems) {
	for _, f := range []struct {
		name string
		v    float64
	}{{"Brightness", j.Brightness}, {"Contrast", j.Contrast}, {"Saturation", j.Saturation}} {
		if !(f.v >= 0 && !math.IsInf(f.v, 1)) {
			p.Addf("Jitter."+f.name, "= %g, must be finite and at least 0", f.v)
		}
	}
	validate.InRange(p, "Jitter.Prob", j.Prob, 0, 1)
}

// factor draws a jitter factor of strength s, uniform in
// [max(0, 1-s), 1+s]; strength 0 is factor 1 without a draw.
func factor(rng *rand.Rand, s float64) float32 {
	if s <= 0 {
		return 1
	}
	return float32(uniform(rng, max(0, 1-s), 1+s))
}

// uniform draws uniformly in [lo, hi); an empty interval gives lo without
// a draw.
func uniform(rng *rand.Rand, lo, hi float64) float64 {
	if !(hi > lo) {
		return lo
	}
	return lo + (hi-lo)*rng.Float64()
}

// coin is true with probability p, drawn only when 0 < p < 1.
func coin(rng *rand.Rand, p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return rng.Float64() < p
}

// tone is one image's colour draw: whether the jitter applies, with which
// factors (1 = unchanged), and whether the image turns gray.
type tone struct {
	jitter                bool
	bright, contrast, sat float32
	gray                  bool
}

// apply changes the HWC pixels px in place (see ColorJitter and
// Augment.Gray).
func (t tone) apply(px []uint8) {
	if !t.jitter && !t.gray {
		return
	}
	var mean float32
	if t.jitter && t.contrast != 1 {
		mean = t.meanLuma(px)
	}
	for p := 0; p < len(px); p += 3 {
		r, g, b := float32(px[p]), float32(px[p+1]), float32(px[p+2])
		if t.jitter {
			r, g, b = t.jitterPixel(r, g, b, mean)
		}
		if t.gray {
			l := luma(r, g, b)
			r, g, b = l, l, l
		}
		px[p], px[p+1], px[p+2] = clampByte(r), clampByte(g), clampByte(b)
	}
}

// jitterPixel applies brightness, contrast (towards mean) and saturation,
// each clamped to [0, 255].
func (t tone) jitterPixel(r, g, b, mean float32) (float32, float32, float32) {
	r, g, b = clamp255(t.bright*r), clamp255(t.bright*g), clamp255(t.bright*b)
	if t.contrast != 1 {
		r, g, b = blend(r, mean, t.contrast), blend(g, mean, t.contrast), blend(b, mean, t.contrast)
	}
	if t.sat != 1 {
		l := luma(r, g, b)
		r, g, b = blend(r, l, t.sat), blend(g, l, t.sat), blend(b, l, t.sat)
	}
	return r, g, b
}

// meanLuma is the mean luma of px after brightness.
func (t tone) meanLuma(px []uint8) float32 {
	var sum float64
	for p := 0; p < len(px); p += 3 {
		r, g, b := float32(px[p]), float32(px[p+1]), float32(px[p+2])
		sum += float64(luma(clamp255(t.bright*r), clamp255(t.bright*g), clamp255(t.bright*b)))
	}
	return float32(sum / float64(len(px)/3))
}

// luma is the ITU-R 601 luma of (r, g, b).
func luma(r, g, b float32) float32 { return lumaR*r + lumaG*g + lumaB*b }

// blend is f*v + (1-f)*to, clamped to [0, 255].
func blend(v, to, f float32) float32 { return clamp255(f*v + (1-f)*to) }

// clamp255 clamps v to [0, 255] (plain comparisons: the min and max
// builtins' NaN and signed-zero rules cost three times as much here).
func clamp255(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return v
}
