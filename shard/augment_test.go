package shard

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// simclr is the heavy augmentation of the tests and benchmarks.
var simclr = Augment{
	Flip:   true,
	Crop:   ResizedCrop{MinScale: 0.2, MaxScale: 1, MinRatio: 3.0 / 4, MaxRatio: 4.0 / 3},
	Jitter: ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Prob: 0.8},
	Gray:   0.2,
}

// unit is the normaliser that maps byte v to v/255.
var unit = Normalizer{Std: [3]float32{1, 1, 1}}

// photos loads n textured gradient JPEGs (larger than size) at size.
func photos(t testing.TB, n, size int) *Dataset {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 7))
	for k := range n {
		img := gradient(size+16+8*k, size+8+4*k, k)
		for i := range img.Pix {
			if i%4 != 3 {
				img.Pix[i] += uint8(r.IntN(48))
			}
		}
		writeFile(t, dir, fmt.Sprintf("%c/%d.jpg", 'a'+k%2, k), jpegBytes(t, img))
	}
	d, _ := load(t, dir, size)
	return d
}

// pcg is a fresh generator of seed.
func pcg(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

// hwc returns sample k (side s) of a batch normalised with unit as bytes.
func hwc(x []float32, k, s int) []uint8 {
	plane := s * s
	out := make([]uint8, 3*plane)
	for c := range 3 {
		for p := range plane {
			out[p*3+c] = uint8(math.Round(float64(x[(k*3+c)*plane+p]) * 255))
		}
	}
	return out
}

// legacyRotationBatch is RotationBatch as it was before Size, Crop, Jitter
// and Gray: the reference of the old path.
func legacyRotationBatch(d *Dataset, idx []int, norm Normalizer, aug Augment, rng *rand.Rand) []float32 {
	s, n := d.Size, len(idx)
	plane := s * s
	dst := make([]float32, Rotations*n*3*plane)
	px := make([]uint8, plane*3)
	chw := make([]float32, plane*3)
	for k, i := range idx {
		aug.draw(rng).render(px, d.Image(i), s)
		norm.toCHW(chw, px)
		for r := range Rotations {
			sample := r*n + k
			rotateCHW(dst[sample*3*plane:(sample+1)*3*plane], chw, s, r)
		}
	}
	return dst
}

// TestAugmentOldPathUnchanged checks that Pad and Flip alone, with Size 0
// or the stored size, give the old batches bit for bit and leave the
// generator where the old code left it.
func TestAugmentOldPathUnchanged(t *testing.T) {
	d := photos(t, 4, 24)
	idx := []int{3, 0, 2, 1, 3}
	nz := ComputeNormalizer(d, idx)
	for _, aug := range []Augment{{}, {Size: 24}, DefaultAugment(), {Pad: 4, Flip: true, Size: 24}, {Pad: 2}, {Flip: true}} {
		old := aug
		old.Size = 0
		for seed := range uint64(5) {
			wantRng, gotRng := pcg(seed), pcg(seed)
			want := legacyRotationBatch(d, idx, nz, old, wantRng)
			got, _ := RotationBatch(d, idx, nz, aug, gotRng, nil, nil)
			if !equalFloats(got, want) {
				t.Fatalf("%+v seed %d: batch differs from the old path", aug, seed)
			}
			if gotRng.Uint64() != wantRng.Uint64() {
				t.Fatalf("%+v seed %d: generator consumed differently", aug, seed)
			}
		}
	}
	a, _ := RotationBatch(d, idx, nz, Augment{Size: d.Size}, nil, nil, nil)
	b, _ := RotationBatch(d, idx, nz, Augment{}, nil, nil, nil)
	if !equalFloats(a, b) {
		t.Fatal("Augment{Size: d.Size} differs from Augment{}")
	}
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestWholeCropIsResize checks that a crop of the whole image (scale 1,
// ratio 1) is the identity at the stored size and the whole-image area
// resample below it, which is also Size alone; both take no draws.
func TestWholeCropIsResize(t *testing.T) {
	d := photos(t, 3, 48)
	idx := []int{0, 1, 2}
	whole := ResizedCrop{MinScale: 1, MaxScale: 1, MinRatio: 1, MaxRatio: 1}
	for _, size := range []int{48, 32, 20} {
		x, _ := ClassBatch(d, idx, unit, Augment{Size: size, Crop: whole}, nil, nil, nil)
		y, _ := ClassBatch(d, idx, unit, Augment{Size: size}, nil, nil, nil)
		if !equalFloats(x, y) {
			t.Fatalf("size %d: whole crop differs from Size alone", size)
		}
		for k, i := range idx {
			want := make([]uint8, size*size*3)
			if size == d.Size {
				copy(want, d.Image(i))
			} else {
				tx, ty := axisTaps(48, 0, 48, size), axisTaps(48, 0, 48, size)
				resampleRGB(want, d.Image(i), 48, 48, tx, ty)
			}
			if got := hwc(x, k, size); string(got) != string(want) {
				t.Fatalf("size %d image %d: not the whole-image resample", size, i)
			}
		}
	}
}

// TestResizeThenPadFlip checks that Pad and Flip apply at the output size,
// on the whole-image resample, with the old draws.
func TestResizeThenPadFlip(t *testing.T) {
	d := photos(t, 2, 48)
	aug := Augment{Size: 32, Pad: 4, Flip: true}
	x, _ := ClassBatch(d, []int{0, 1}, unit, aug, pcg(1), nil, nil)
	twin := pcg(1)
	scaled, want := make([]uint8, 32*32*3), make([]uint8, 32*32*3)
	for k := range 2 {
		resampleRGB(scaled, d.Image(k), 48, 48, axisTaps(48, 0, 48, 32), axisTaps(48, 0, 48, 32))
		aug.draw(twin).render(want, scaled, 32)
		if string(hwc(x, k, 32)) != string(want) {
			t.Fatalf("image %d: not the pad-crop and flip of the resample", k)
		}
	}
}

// ramp is a dataset of one 48 px image: R = 5x, G = 5y, B = (x²+y²)/18.
func ramp(t *testing.T) *Dataset {
	const n = 48
	pix := make([]uint8, n*n*3)
	for y := range n {
		for x := range n {
			pix[(y*n+x)*3], pix[(y*n+x)*3+1], pix[(y*n+x)*3+2] = uint8(5*x), uint8(5*y), uint8((x*x+y*y)/18)
		}
	}
	d, err := NewDataset([]string{"a"}, []Item{{Path: "a/ramp.png"}}, n, pix)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// refWeights is the definition of axis resampling, in float64: output i
// of out over [start, start+extent) averages the source pixels [j, j+1)
// by overlap when shrinking and interpolates linearly at its centre
// (clamped to the edge pixels' centres) when enlarging.
func refWeights(n int, start, extent float64, out, i int) map[int]float64 {
	w := map[int]float64{}
	scale := extent / float64(out)
	if scale >= 1 {
		lo, hi := start+float64(i)*scale, start+float64(i+1)*scale
		for j := max(0, int(math.Floor(lo))); j < n && float64(j) < hi; j++ {
			if o := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j)); o > 0 {
				w[j] = o / scale
			}
		}
		return w
	}
	c := math.Min(math.Max(start+(float64(i)+0.5)*scale-0.5, 0), float64(n-1))
	j := int(c)
	w[j] = 1 - (c - float64(j))
	if j+1 < n {
		w[j+1] += c - float64(j)
	}
	return w
}

// TestCropPixels draws crops of a known image and checks the output
// against the definition of resampling the drawn region (within one level
// of float32 rounding, nearly always exact) and, exactly, against
// resampleRGB of that region; flips mirror it.
func TestCropPixels(t *testing.T) {
	d := ramp(t)
	src := d.Image(0)
	for _, tc := range []struct {
		name string
		aug  Augment
	}{
		{"down", Augment{Size: 32, Crop: ResizedCrop{MinScale: 0.5, MaxScale: 1, MinRatio: 0.75, MaxRatio: 1.333}}},
		{"up", Augment{Size: 40, Crop: ResizedCrop{MinScale: 0.08, MaxScale: 0.3, MinRatio: 0.5, MaxRatio: 2}}},
		{"mixed-flip", Augment{Size: 24, Flip: true, Crop: ResizedCrop{MinScale: 0.1, MaxScale: 0.4, MinRatio: 0.2, MaxRatio: 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, exact, total := tc.aug.Size, 0, 0
			for seed := range uint64(20) {
				smp := tc.aug.drawSample(pcg(seed), d.Size)
				x, _ := ClassBatch(d, []int{0}, unit, tc.aug, pcg(seed), nil, nil)
				got, b := hwc(x, 0, s), smp.region
				mirror := make([]uint8, s*s*3)
				resampleRGB(mirror, src, 48, 48, axisTaps(48, b.x0, b.w, s), axisTaps(48, b.y0, b.h, s))
				for y := range s {
					wy := refWeights(48, b.y0, b.h, s, y)
					for ox := range s {
						sx := ox
						if smp.view.flip {
							sx = s - 1 - ox
						}
						wx := refWeights(48, b.x0, b.w, s, sx)
						for c := range 3 {
							var v float64
							for j, a := range wy {
								for i, bw := range wx {
									v += a * bw * float64(src[(j*48+i)*3+c])
								}
							}
							g := got[(y*s+ox)*3+c]
							if math.Abs(float64(g)-math.Round(v)) > 1 {
								t.Fatalf("seed %d %+v (%d,%d,%d): %d, definition %.3f", seed, b, y, ox, c, g, v)
							}
							if float64(g) == math.Round(v) {
								exact++
							}
							if g != mirror[(y*s+sx)*3+c] {
								t.Fatalf("seed %d (%d,%d,%d): %d, resampleRGB %d", seed, y, ox, c, g, mirror[(y*s+sx)*3+c])
							}
							total++
						}
					}
				}
			}
			if exact < total*99/100 {
				t.Errorf("%d of %d values equal the rounded definition", exact, total)
			}
		})
	}
}

// TestCropRegions checks many drawn regions: area and ratio in range, box
// inside the image, positions and log-ratios spread uniformly, and the
// centred fallback when no attempt can fit.
func TestCropRegions(t *testing.T) {
	const n = 48.0
	c := ResizedCrop{MinScale: 0.08, MaxScale: 1, MinRatio: 3.0 / 4, MaxRatio: 4.0 / 3}
	rng := pcg(5)
	const draws = 20000
	minScale, maxScale, sumPos, sumLog := 1.0, 0.0, 0.0, 0.0
	for range draws {
		b := c.draw(rng, n)
		scale, ratio := b.w*b.h/(n*n), b.w/b.h
		if scale < c.MinScale*(1-1e-12) || scale > c.MaxScale*(1+1e-12) ||
			ratio < c.MinRatio*(1-1e-12) || ratio > c.MaxRatio*(1+1e-12) {
			t.Fatalf("%+v: scale %g ratio %g out of range", b, scale, ratio)
		}
		if b.x0 < 0 || b.y0 < 0 || b.x0+b.w > n*(1+1e-12) || b.y0+b.h > n*(1+1e-12) {
			t.Fatalf("%+v outside the %g px image", b, n)
		}
		minScale, maxScale = math.Min(minScale, scale), math.Max(maxScale, scale)
		if b.w < n-1e-9 {
			sumPos += b.x0 / (n - b.w)
		} else {
			sumPos += 0.5
		}
		sumLog += math.Log(ratio)
	}
	if minScale > 0.085 || maxScale < 0.95 {
		t.Errorf("scales span [%g, %g], want about [0.08, 1]", minScale, maxScale)
	}
	if m := sumPos / draws; math.Abs(m-0.5) > 0.01 {
		t.Errorf("mean relative x position %g, want 0.5", m)
	}
	if m := sumLog / draws; math.Abs(m) > 0.01 {
		t.Errorf("mean log-ratio %g, want 0 (log-uniform over a symmetric range)", m)
	}
	// Ratios of at least 2 at 90% of the area never fit: the centred
	// region of ratio 2 (the range's nearest to 1), twenty draws taken.
	wide := ResizedCrop{MinScale: 0.9, MaxScale: 1, MinRatio: 2, MaxRatio: 3}
	rng, twin := pcg(6), pcg(6)
	if b := wide.draw(rng, n); b != (box{x0: 0, y0: 12, w: 48, h: 24}) {
		t.Errorf("fallback %+v, want the centred 48x24", b)
	}
	for range 20 {
		twin.Float64()
	}
	if rng.Uint64() != twin.Uint64() {
		t.Error("the fallback did not take exactly 10 attempts of two draws")
	}
	tall := ResizedCrop{MinScale: 0.9, MaxScale: 1, MinRatio: 0.25, MaxRatio: 0.5}
	if b := tall.draw(pcg(6), n); b != (box{x0: 12, y0: 0, w: 24, h: 48}) {
		t.Errorf("fallback %+v, want the centred 24x48", b)
	}
}

// TestDrawOrder replays the documented draw order on a twin generator.
func TestDrawOrder(t *testing.T) {
	aug := simclr
	coins := map[bool]int{}
	for seed := range uint64(200) {
		rng, twin := pcg(seed), pcg(seed)
		got := aug.drawSample(rng, 64)
		var want sample
		want.region = twinCrop(twin, aug.Crop, 64)
		want.view.flip = twin.IntN(2) == 1
		want.tone = tone{bright: 1, contrast: 1, sat: 1}
		if twin.Float64() < 0.8 {
			s := 0.4
			lo, hi := 1-s, 1+s
			want.tone.jitter = true
			want.tone.bright = float32(lo + (hi-lo)*twin.Float64())
			want.tone.contrast = float32(lo + (hi-lo)*twin.Float64())
			want.tone.sat = float32(lo + (hi-lo)*twin.Float64())
		}
		want.tone.gray = twin.Float64() < 0.2
		if got != want {
			t.Fatalf("seed %d: %+v, want %+v", seed, got, want)
		}
		if rng.Uint64() != twin.Uint64() {
			t.Fatalf("seed %d: generator consumed differently", seed)
		}
		coins[got.tone.jitter]++
		coins[got.tone.gray]++
	}
	if coins[true] < 150 || coins[false] < 150 {
		t.Errorf("coins %v: both sides should come up often", coins)
	}
}

// twinCrop is torchvision's get_params with real sizes, written out.
func twinCrop(r *rand.Rand, c ResizedCrop, n float64) box {
	for range 10 {
		area := n * n * (c.MinScale + (c.MaxScale-c.MinScale)*r.Float64())
		lo, hi := math.Log(c.MinRatio), math.Log(c.MaxRatio)
		ratio := math.Exp(lo + (hi-lo)*r.Float64())
		w, h := math.Sqrt(area*ratio), math.Sqrt(area/ratio)
		if w <= n && h <= n {
			y0 := (n - h) * r.Float64()
			return box{x0: (n - w) * r.Float64(), y0: y0, w: w, h: h}
		}
	}
	panic("no fit")
}

// TestToneKnownAnswers applies given factors to known pixels.
func TestToneKnownAnswers(t *testing.T) {
	id := tone{bright: 1, contrast: 1, sat: 1}
	with := func(f func(*tone)) tone { x := id; x.jitter = true; f(&x); return x }
	// The two-pixel image of the contrast cases: lumas 0 and 124.2, mean 62.1.
	pair := []uint8{0, 0, 0, 200, 100, 50}
	for _, tc := range []struct {
		name     string
		t        tone
		in, want []uint8
	}{
		{"brightness up, clamped", with(func(x *tone) { x.bright = 1.5 }), []uint8{100, 200, 50}, []uint8{150, 255, 75}},
		{"brightness down", with(func(x *tone) { x.bright = 0.5 }), []uint8{100, 4, 254}, []uint8{50, 2, 127}},
		{"brightness 0", with(func(x *tone) { x.bright = 0 }), []uint8{100, 4, 254}, []uint8{0, 0, 0}},
		{"contrast 2", with(func(x *tone) { x.contrast = 2 }), pair, []uint8{0, 0, 0, 255, 138, 38}},
		{"contrast 0.5", with(func(x *tone) { x.contrast = 0.5 }), pair, []uint8{31, 31, 31, 131, 81, 56}},
		{"contrast 0", with(func(x *tone) { x.contrast = 0 }), pair, []uint8{62, 62, 62, 62, 62, 62}},
		{"saturation 0", with(func(x *tone) { x.sat = 0 }), []uint8{200, 100, 50}, []uint8{124, 124, 124}},
		{"saturation 2", with(func(x *tone) { x.sat = 2 }), []uint8{200, 100, 50}, []uint8{255, 76, 0}},
		{"saturation 0.5", with(func(x *tone) { x.sat = 0.5 }), []uint8{200, 100, 50}, []uint8{162, 112, 87}},
		// 2*(100,50,25) = (200,100,50); contrast 0.5 about 62.1; then gray:
		// the luma of the blend is the blend of the lumas, 0.5*124.2+31.05.
		{"order", with(func(x *tone) { x.bright, x.contrast, x.sat = 2, 0.5, 0 }),
			[]uint8{0, 0, 0, 100, 50, 25}, []uint8{31, 31, 31, 93, 93, 93}},
		// Brightness clamps (400 -> 255) before saturation takes the luma.
		{"clamp between steps", with(func(x *tone) { x.bright, x.sat = 2, 0 }), []uint8{200, 0, 0}, []uint8{76, 76, 76}},
		// 78.516 (0.299 R): torchvision's 0.2989 would give 78.492.
		{"gray", tone{bright: 1, contrast: 1, sat: 1, gray: true},
			[]uint8{200, 100, 50, 10, 20, 30, 255, 255, 255, 1, 0, 0, 241, 11, 0},
			[]uint8{124, 124, 124, 18, 18, 18, 255, 255, 255, 0, 0, 0, 79, 79, 79}},
		{"none", id, []uint8{200, 100, 50}, []uint8{200, 100, 50}},
	} {
		px := append([]uint8(nil), tc.in...)
		tc.t.apply(px)
		if string(px) != string(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, px, tc.want)
		}
	}
}

// TestJitterInBatch checks a brightness-only jitter end to end: the factor
// is the documented draw, applied to the rendered pixels.
func TestJitterInBatch(t *testing.T) {
	d := photos(t, 2, 24)
	aug := Augment{Jitter: ColorJitter{Brightness: 0.5, Prob: 1}}
	for seed := range uint64(5) {
		x, _ := ClassBatch(d, []int{1}, unit, aug, pcg(seed), nil, nil)
		f := float32(0.5 + pcg(seed).Float64())
		for p, v := range hwc(x, 0, 24) {
			if want := clampByte(min(f*float32(d.Image(1)[p]), 255)); v != want {
				t.Fatalf("seed %d value %d: %d, want %d (factor %g)", seed, p, v, want, f)
			}
		}
	}
	g, _ := ClassBatch(d, []int{0, 1}, unit, Augment{Gray: 1}, nil, nil, nil)
	for k := range 2 {
		px := hwc(g, k, 24)
		for p := 0; p < len(px); p += 3 {
			if px[p] != px[p+1] || px[p] != px[p+2] {
				t.Fatalf("Gray 1: pixel %d of image %d is %v", p/3, k, px[p:p+3])
			}
		}
	}
}

// TestAugmentWithoutDraws checks that augmentations with no random part
// accept a nil generator and leave a real one untouched.
func TestAugmentWithoutDraws(t *testing.T) {
	d := photos(t, 2, 48)
	idx := []int{0, 1}
	for _, aug := range []Augment{
		{}, {Size: 32}, {Size: 64},
		{Crop: ResizedCrop{MinScale: 1, MaxScale: 1, MinRatio: 1, MaxRatio: 1}, Size: 24},
		{Jitter: ColorJitter{Brightness: 0.4, Prob: 0}},
		{Jitter: ColorJitter{Prob: 1}},
		{Gray: 1, Size: 32},
	} {
		x, _ := ClassBatch(d, idx, unit, aug, nil, nil, nil)
		RotationBatch(d, idx, unit, aug, nil, nil, nil)
		ImagesEach(d, idx, unit, aug, func(int) *rand.Rand { return nil }, make([]float32, len(x)))
		rng := pcg(3)
		ClassBatch(d, idx, unit, aug, rng, nil, nil)
		if rng.Uint64() != pcg(3).Uint64() {
			t.Errorf("%+v drew from the generator", aug)
		}
	}
}

// TestAugmentDeterministic checks the same seed gives the same batch and
// another seed another.
func TestAugmentDeterministic(t *testing.T) {
	d := photos(t, 4, 48)
	idx := []int{0, 1, 2, 3, 0}
	aug := simclr
	aug.Size = 32
	a, _ := RotationBatch(d, idx, unit, aug, pcg(1), nil, nil)
	b, _ := RotationBatch(d, idx, unit, aug, pcg(1), nil, nil)
	c, _ := RotationBatch(d, idx, unit, aug, pcg(2), nil, nil)
	if !equalFloats(a, b) {
		t.Error("same seed, different batches")
	}
	if equalFloats(a, c) {
		t.Error("different seeds, same batch")
	}
	each := make([]float32, len(idx)*3*32*32)
	ImagesEach(d, idx, unit, aug, func(int) *rand.Rand { return pcg(9) }, each)
	one, _ := ClassBatch(d, idx[:1], unit, aug, pcg(9), nil, nil)
	if !equalFloats(each[:len(one)], one) {
		t.Error("ImagesEach differs from ClassBatch with the same draws")
	}
}

// TestRotationOfCrop checks that the rotated samples of an augmented,
// cropped and resized image are exact permutations of the unrotated one,
// which is ClassBatch's sample of the same draws.
func TestRotationOfCrop(t *testing.T) {
	d := photos(t, 3, 48)
	idx := []int{2, 0, 1}
	nz := ComputeNormalizer(d, idx)
	aug := simclr
	aug.Size = 20
	const s = 20
	x, labels := RotationBatch(d, idx, nz, aug, pcg(4), nil, nil)
	base, _ := ClassBatch(d, idx, nz, aug, pcg(4), nil, nil)
	if len(x) != 4*len(idx)*3*s*s {
		t.Fatalf("len %d", len(x))
	}
	for r := range 4 {
		for k := range idx {
			sample := r*len(idx) + k
			if labels[sample] != r {
				t.Fatalf("label %d of sample %d", labels[sample], sample)
			}
			for c := range 3 {
				for i := range s {
					for j := range s {
						si, sj := i, j
						switch r {
						case 1:
							si, sj = j, s-1-i
						case 2:
							si, sj = s-1-i, s-1-j
						case 3:
							si, sj = s-1-j, i
						}
						got := x[((sample*3+c)*s+i)*s+j]
						if want := base[((k*3+c)*s+si)*s+sj]; got != want {
							t.Fatalf("rotation %d image %d (%d,%d,%d): %g want %g", r, k, c, i, j, got, want)
						}
					}
				}
			}
		}
	}
}

// TestAugmentOutSizeAndValidate checks OutSize, the destination check of
// ImagesEach, and that Validate names each bad field (and the batch
// functions refuse it).
func TestAugmentOutSizeAndValidate(t *testing.T) {
	d := photos(t, 2, 48)
	if got := (Augment{}).OutSize(d); got != 48 {
		t.Errorf("OutSize of the zero value %d", got)
	}
	if got := (Augment{Size: 32}).OutSize(d); got != 32 {
		t.Errorf("OutSize of Size 32: %d", got)
	}
	if !panics(func() { ImagesEach(d, []int{0}, unit, Augment{Size: 32}, nil, make([]float32, 3*48*48)) }) {
		t.Error("ImagesEach took a destination of the stored size")
	}
	crop := ResizedCrop{MinScale: 0.2, MaxScale: 1, MinRatio: 0.75, MaxRatio: 1.5}
	for _, tc := range []struct {
		aug  Augment
		want []string
	}{
		{simclr, nil},
		{Augment{Pad: 4, Crop: crop}, []string{"Augment.Pad = 4, must be 0 with Crop"}},
		{Augment{Pad: -1, Size: -2}, []string{"Augment.Pad", "Augment.Size"}},
		{Augment{Crop: ResizedCrop{MinScale: 0.5, MaxScale: 1.5, MinRatio: 2, MaxRatio: 1}}, []string{"Crop.MaxScale", "Crop.MinRatio"}},
		{Augment{Crop: ResizedCrop{MinScale: 0, MaxScale: 1, MinRatio: 1, MaxRatio: 1}}, []string{"Crop.MinScale"}},
		{Augment{Jitter: ColorJitter{Brightness: -1, Saturation: math.NaN(), Prob: 2}}, []string{"Jitter.Brightness", "Jitter.Saturation", "Jitter.Prob"}},
		{Augment{Gray: 1.5}, []string{"Augment.Gray"}},
	} {
		err := tc.aug.Validate()
		if (err == nil) != (tc.want == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%+v: %v", tc.aug, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q lacks %q", tc.aug, err, w)
			}
		}
		if tc.want != nil && !panics(func() { ClassBatch(d, []int{0}, unit, tc.aug, pcg(1), nil, nil) }) {
			t.Errorf("%+v: ClassBatch did not panic", tc.aug)
		}
	}
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}
