package shard

import (
	"math"
	"math/rand/v2"
	"testing"
)

// tiny returns a dataset of n random images of side s.
func tiny(n, s int, seed uint64) *Dataset {
	r := rand.New(rand.NewPCG(seed, 0))
	d := &Dataset{Classes: []string{"x", "y"}, Size: s, pix: make([]uint8, n*s*s*3)}
	for i := range d.pix {
		d.pix[i] = uint8(r.IntN(256))
	}
	for i := range n {
		d.Items = append(d.Items, Item{Path: string(rune('a' + i)), Class: i % 2})
	}
	return d
}

// TestRotationBatchExact checks the layout, labels and pixel mapping of each
// rotation against the definition, and that four quarter turns are the
// identity.
func TestRotationBatchExact(t *testing.T) {
	const s = 5
	d := tiny(3, s, 1)
	idx := []int{2, 0}
	x, labels := RotationBatch(d, idx, Normalizer{Std: [3]float32{1, 1, 1}}, Augment{}, nil, nil, nil)
	if len(x) != 4*len(idx)*3*s*s || len(labels) != 4*len(idx) {
		t.Fatalf("len %d, %d", len(x), len(labels))
	}
	at := func(sample, c, i, j int) float32 { return x[((sample*3+c)*s+i)*s+j] }
	src := func(k, c, i, j int) float32 { return float32(d.Image(idx[k])[(i*s+j)*3+c]) / 255 }
	for r := range 4 {
		for k := range idx {
			sample := r*len(idx) + k
			if labels[sample] != r {
				t.Fatalf("label of sample %d is %d, want %d", sample, labels[sample], r)
			}
			for c := range 3 {
				for i := range s {
					for j := range s {
						var want float32
						switch r {
						case 0:
							want = src(k, c, i, j)
						case 1:
							want = src(k, c, j, s-1-i)
						case 2:
							want = src(k, c, s-1-i, s-1-j)
						case 3:
							want = src(k, c, s-1-j, i)
						}
						if math.Abs(float64(at(sample, c, i, j)-want)) > 1e-6 {
							t.Fatalf("rotation %d image %d (%d,%d,%d): %g want %g", r, k, c, i, j, at(sample, c, i, j), want)
						}
					}
				}
			}
		}
	}
	// Four quarter turns give the original back.
	plane := make([]float32, 3*s*s)
	rotateCHW(plane, x[:3*s*s], s, 0)
	tmp := make([]float32, len(plane))
	for range 4 {
		rotateCHW(tmp, plane, s, 1)
		plane, tmp = tmp, plane
	}
	for i := range plane {
		if plane[i] != x[i] {
			t.Fatal("four quarter turns are not the identity")
		}
	}
	// Rotating twice by 1 equals rotating by 2.
	rotateCHW(tmp, x[:3*s*s], s, 1)
	rotateCHW(plane, tmp, s, 1)
	for i := range plane {
		if plane[i] != x[2*len(idx)*3*s*s+i] {
			t.Fatal("two quarter turns differ from rotation 2")
		}
	}
}

// TestAugmentCropFlip checks the padding crop and flip against torchvision's
// definition: out(y, x) = padded(y+i, x'+j) with x' flipped.
func TestAugmentCropFlip(t *testing.T) {
	const s = 6
	d := tiny(1, s, 2)
	px := d.Image(0)
	out := make([]uint8, len(px))
	for _, v := range []view{{dx: 2, dy: -1}, {dx: -4, dy: 3, flip: true}, {flip: true}} {
		v.render(out, px, s)
		for y := range s {
			for x := range s {
				sx := x
				if v.flip {
					sx = s - 1 - x
				}
				sx, sy := sx+v.dx, y+v.dy
				for c := range 3 {
					var want uint8
					if sx >= 0 && sx < s && sy >= 0 && sy < s {
						want = px[(sy*s+sx)*3+c]
					}
					if got := out[(y*s+x)*3+c]; got != want {
						t.Fatalf("%+v at (%d,%d,%d): %d want %d", v, y, x, c, got, want)
					}
				}
			}
		}
	}
	// Draws stay within the padding and both flips happen.
	rng := rand.New(rand.NewPCG(3, 4))
	flips := 0
	for range 200 {
		v := DefaultAugment().draw(rng)
		if v.dx < -4 || v.dx > 4 || v.dy < -4 || v.dy > 4 {
			t.Fatalf("offset %+v outside the padding", v)
		}
		if v.flip {
			flips++
		}
	}
	if flips < 60 || flips > 140 {
		t.Fatalf("%d flips in 200", flips)
	}
}

// TestNormalizerAndClassBatch checks normalised training data has zero mean
// and unit variance per channel, and class labels follow the items.
func TestNormalizerAndClassBatch(t *testing.T) {
	d := tiny(6, 4, 5)
	idx := []int{0, 1, 2, 3, 4, 5}
	nz := ComputeNormalizer(d, idx)
	x, labels := ClassBatch(d, idx, nz, Augment{}, nil, make([]float32, 10), nil)
	for k, i := range idx {
		if labels[k] != d.Items[i].Class {
			t.Fatalf("label %d = %d, want %d", k, labels[k], d.Items[i].Class)
		}
	}
	plane := 16
	for c := range 3 {
		var sum, sq float64
		for k := range idx {
			for _, v := range x[(k*3+c)*plane : (k*3+c+1)*plane] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		n := float64(len(idx) * plane)
		if mean, v := sum/n, sq/n-(sum/n)*(sum/n); math.Abs(mean) > 1e-4 || math.Abs(v-1) > 1e-3 {
			t.Errorf("channel %d: mean %g variance %g", c, mean, v)
		}
	}
	if got := ComputeNormalizer(d, nil); got.Std != [3]float32{1, 1, 1} {
		t.Errorf("empty normalizer %+v", got)
	}
}

// TestBatchReusesBuffers checks dst is reused when large enough.
func TestBatchReusesBuffers(t *testing.T) {
	d := tiny(4, 4, 6)
	buf := make([]float32, 1000)
	lab := make([]int, 100)
	x, l := RotationBatch(d, []int{0, 1}, Normalizer{Std: [3]float32{1, 1, 1}}, DefaultAugment(),
		rand.New(rand.NewPCG(1, 1)), buf, lab)
	if &x[0] != &buf[0] || &l[0] != &lab[0] || len(x) != 8*48 || len(l) != 8 {
		t.Fatal("buffers not reused or wrong length")
	}
}
