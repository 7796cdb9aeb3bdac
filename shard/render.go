package shard

import "math/rand/v2"

// renderer renders the images of one dataset under one Augment, reusing
// its buffers from one image to the next (one batch function call).
type renderer struct {
	aug Augment
	d   *Dataset
	out int
	// resamples is whether images pass through the resampler (a crop, or
	// an output size other than the stored one).
	resamples bool

	px     []uint8 // the rendered image, out*out*3
	scaled []uint8 // the resampled region, before the pad-crop and flip
	tx, ty tapSet
	rs     resampler
}

// newRenderer is the renderer of d under aug; it panics if aug is not
// valid.
func newRenderer(d *Dataset, aug Augment) *renderer {
	if err := aug.Validate(); err != nil {
		panic("shard: " + err.Error())
	}
	out := aug.OutSize(d)
	r := &renderer{aug: aug, d: d, out: out, px: make([]uint8, out*out*3)}
	if r.resamples = aug.Crop.on() || out != d.Size; r.resamples {
		r.scaled = make([]uint8, out*out*3)
		r.rs.tmp = make([]float32, 0, d.Size*out*3) // the most rows any crop reads
		r.tx.reserve(d.Size, out)
		r.ty.reserve(d.Size, out)
	}
	return r
}

// image renders image i with its draws from rng; the result is valid until
// the next call.
func (r *renderer) image(i int, rng *rand.Rand) []uint8 {
	return r.render(i, r.aug.drawSample(rng, r.d.Size))
}

// render renders image i under the draw s.
func (r *renderer) render(i int, s sample) []uint8 {
	src := r.d.Image(i)
	if r.resamples {
		n, b := r.d.Size, s.region
		tx := r.tx.build(n, b.x0, b.w, r.out)
		ty := r.ty.build(n, b.y0, b.h, r.out)
		r.rs.rgb(r.scaled, src, n, n, tx, ty)
		src = r.scaled
	}
	s.view.render(r.px, src, r.out)
	s.tone.apply(r.px)
	return r.px
}
