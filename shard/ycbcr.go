package shard

import "image"

// resampleYCbCr resizes the square [x0, x0+s) x [y0, y0+s) of a decoded
// JPEG to size x size RGB without converting every source pixel: the area
// filter is linear, so it runs on the Y, Cb and Cr planes at their own
// resolutions (chroma at its subsampled size, which is exactly the area of
// the decoder's nearest-neighbour chroma upsampling) and only the size x
// size result is converted to RGB (JFIF coefficients, as image/color).
func resampleYCbCr(dst []uint8, m *image.YCbCr, x0, y0, s float64, size int) {
	hf, vf := chromaFactors(m.SubsampleRatio)
	b := m.Rect
	yp := resamplePlane(m.Y, m.YStride, b.Dx(), b.Dy(), x0, y0, s, s, size)
	cw, ch := chromaSize(b, hf, vf)
	cx0, cy0 := (x0+float64(b.Min.X%hf))/float64(hf), (y0+float64(b.Min.Y%vf))/float64(vf)
	cb := resamplePlane(m.Cb, m.CStride, cw, ch, cx0, cy0, s/float64(hf), s/float64(vf), size)
	cr := resamplePlane(m.Cr, m.CStride, cw, ch, cx0, cy0, s/float64(hf), s/float64(vf), size)
	for p := range size * size {
		y, u, v := yp[p], cb[p]-128, cr[p]-128
		dst[p*3] = clampByte(y + 1.40200*v)
		dst[p*3+1] = clampByte(y - 0.34414*u - 0.71414*v)
		dst[p*3+2] = clampByte(y + 1.77200*u)
	}
}

// chromaFactors returns the horizontal and vertical chroma subsampling.
func chromaFactors(r image.YCbCrSubsampleRatio) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

// chromaSize is the chroma plane size of bounds b, as image.NewYCbCr lays it
// out.
func chromaSize(b image.Rectangle, hf, vf int) (int, int) {
	w := (b.Max.X+hf-1)/hf - b.Min.X/hf
	h := (b.Max.Y+vf-1)/vf - b.Min.Y/vf
	return w, h
}

// resamplePlane area-resamples [x0, x0+ew) x [y0, y0+eh) of a w x h plane
// (row stride stride) to size x size floats.
func resamplePlane(plane []uint8, stride, w, h int, x0, y0, ew, eh float64, size int) []float32 {
	tx := axisTaps(w, x0, ew, size)
	ty := axisTaps(h, y0, eh, size)
	r0 := ty[0].first
	r1 := ty[size-1].first + len(ty[size-1].w)
	tmp := make([]float32, (r1-r0)*size)
	for y := r0; y < r1; y++ {
		row := plane[y*stride : y*stride+w]
		out := tmp[(y-r0)*size : (y-r0+1)*size]
		for i, t := range tx {
			var acc float32
			for k, wt := range t.w {
				acc += wt * float32(row[t.first+k])
			}
			out[i] = acc
		}
	}
	res := make([]float32, size*size)
	for o, t := range ty {
		out := res[o*size : (o+1)*size]
		for k, wt := range t.w {
			row := tmp[(t.first+k-r0)*size : (t.first+k-r0+1)*size]
			for i, v := range row {
				out[i] += wt * v
			}
		}
	}
	return res
}
