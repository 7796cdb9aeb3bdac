package shard

import "math/rand/v2"

// Rotations is the number of rotation classes: 0, 90, 180 and 270 degrees.
const Rotations = 4

// RotationBatch builds the rotation-task batch of images idx. Each image is
// rendered and augmented first (aug, drawn from rng in idx order; rng may
// be nil when aug has no random part, see Augment), normalised, and
// written at rotations of 0, 90, 180 and 270 degrees counter-clockwise with
// labels 0, 1, 2, 3. Rotations are exact pixel permutations of the
// rendered square, the same as torch.rot90(x, r, (2, 3)).
//
// Layout, rotation-major like the reference (torch.cat over r): sample
// r*len(idx)+k is image idx[k] rotated by r*90 degrees, label r. Samples
// are NCHW float32 of C=3, H=W=aug.OutSize(d). dst and labels are reused
// when large enough and returned resliced to 4*len(idx) samples. Like
// every batch function it panics if aug.Validate fails.
func RotationBatch(d *Dataset, idx []int, norm Normalizer, aug Augment, rng *rand.Rand, dst []float32, labels []int) ([]float32, []int) {
	return RotationBatchEach(d, idx, norm, aug, func(int) *rand.Rand { return rng }, dst, labels)
}

// RotationBatchEach is RotationBatch with image idx[k]'s augmentation drawn
// from rngOf(k), so each image can have a generator of its own (the job's
// batches do: an image's draw does not depend on which worker builds it).
func RotationBatchEach(d *Dataset, idx []int, norm Normalizer, aug Augment, rngOf func(k int) *rand.Rand, dst []float32, labels []int) ([]float32, []int) {
	r := newRenderer(d, aug)
	s, n := r.out, len(idx)
	plane := s * s
	dst = grow(dst, Rotations*n*3*plane)
	labels = growInts(labels, Rotations*n)
	chw := make([]float32, plane*3)
	for k, i := range idx {
		norm.toCHW(chw, r.image(i, rngOf(k)))
		for rot := range Rotations {
			sample := rot*n + k
			rotateCHW(dst[sample*3*plane:(sample+1)*3*plane], chw, s, rot)
			labels[sample] = rot
		}
	}
	return dst, labels
}

// ClassBatch builds a classification batch of images idx: each augmented
// (as in RotationBatch), normalised, NCHW float32 of side aug.OutSize(d),
// label = class index. Sample k is image idx[k].
func ClassBatch(d *Dataset, idx []int, norm Normalizer, aug Augment, rng *rand.Rand, dst []float32, labels []int) ([]float32, []int) {
	r := newRenderer(d, aug)
	n, plane := len(idx), r.out*r.out
	dst = grow(dst, n*3*plane)
	labels = growInts(labels, n)
	for k, i := range idx {
		norm.toCHW(dst[k*3*plane:(k+1)*3*plane], r.image(i, rng))
		labels[k] = d.Items[i].Class
	}
	return dst, labels
}

// toCHW normalises HWC bytes into CHW floats.
func (nz Normalizer) toCHW(out []float32, px []uint8) {
	plane := len(px) / 3
	for c := range 3 {
		scale := 1 / (255 * nz.Std[c])
		shift := nz.Mean[c] / nz.Std[c]
		o := out[c*plane : (c+1)*plane]
		for p := range o {
			o[p] = float32(px[p*3+c])*scale - shift
		}
	}
}

// rotateCHW writes src (3 x s x s) rotated counter-clockwise by r*90
// degrees into dst: out[i][j] is src[j][s-1-i] for r=1, src[s-1-i][s-1-j]
// for r=2, src[s-1-j][i] for r=3.
func rotateCHW(dst, src []float32, s, r int) {
	plane := s * s
	if r == 0 {
		copy(dst, src[:3*plane])
		return
	}
	for c := range 3 {
		in, out := src[c*plane:(c+1)*plane], dst[c*plane:(c+1)*plane]
		for i := range s {
			row := out[i*s : (i+1)*s]
			switch r {
			case 1:
				for j := range row {
					row[j] = in[j*s+s-1-i]
				}
			case 2:
				from := in[(s-1-i)*s : (s-i)*s]
				for j := range row {
					row[j] = from[s-1-j]
				}
			default:
				for j := range row {
					row[j] = in[(s-1-j)*s+i]
				}
			}
		}
	}
}

// grow returns buf resliced to n, reallocated if too small.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// growInts returns buf resliced to n, reallocated if too small.
func growInts(buf []int, n int) []int {
	if cap(buf) < n {
		return make([]int, n)
	}
	return buf[:n]
}

// ImagesEach writes images idx, each augmented (image idx[k]'s draw from
// rngOf(k)) and normalised, as NCHW float32 into dst, which must hold
// exactly len(idx) images of side aug.OutSize(d). Sample k is image idx[k],
// unrotated; the caller holds the labels (a worker's images carry none).
func ImagesEach(d *Dataset, idx []int, norm Normalizer, aug Augment, rngOf func(k int) *rand.Rand, dst []float32) {
	r := newRenderer(d, aug)
	plane := r.out * r.out
	if len(dst) != len(idx)*3*plane {
		panic("shard: images: destination does not hold the images")
	}
	for k, i := range idx {
		norm.toCHW(dst[k*3*plane:(k+1)*3*plane], r.image(i, rngOf(k)))
	}
}
