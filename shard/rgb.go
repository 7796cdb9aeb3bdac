package shard

import (
	"image"
	"image/draw"
)

// toRGB converts region r of img to HWC RGB bytes. Common decoder outputs
// take direct paths; everything else (CMYK, 16-bit, palette) goes through
// image/draw. Alpha is composited over black.
func toRGB(img image.Image, r image.Rectangle) []uint8 {
	out := make([]uint8, r.Dx()*r.Dy()*3)
	switch m := img.(type) {
	case *image.YCbCr:
		ycbcrToRGB(out, m, r)
	case *image.Gray:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, y):]
			o := out[(y-r.Min.Y)*r.Dx()*3:]
			for x := range r.Dx() {
				v := row[x]
				o[x*3], o[x*3+1], o[x*3+2] = v, v, v
			}
		}
	default:
		rgba, ok := img.(*image.RGBA)
		if !ok {
			rgba = image.NewRGBA(r)
			draw.Draw(rgba, r, img, r.Min, draw.Src)
		}
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := rgba.Pix[rgba.PixOffset(r.Min.X, y):]
			o := out[(y-r.Min.Y)*r.Dx()*3:]
			for x := range r.Dx() {
				o[x*3], o[x*3+1], o[x*3+2] = row[x*4], row[x*4+1], row[x*4+2]
			}
		}
	}
	return out
}

// ycbcrToRGB converts a JPEG's YCbCr region with the same fixed-point
// arithmetic as color.YCbCrToRGB.
func ycbcrToRGB(out []uint8, m *image.YCbCr, r image.Rectangle) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		o := out[(y-r.Min.Y)*r.Dx()*3:]
		for x := r.Min.X; x < r.Max.X; x++ {
			yy := int32(m.Y[m.YOffset(x, y)]) * 0x10101
			ci := m.COffset(x, y)
			cb, cr := int32(m.Cb[ci])-128, int32(m.Cr[ci])-128
			i := (x - r.Min.X) * 3
			o[i] = clamp16(yy + 91881*cr)
			o[i+1] = clamp16(yy - 22554*cb - 46802*cr)
			o[i+2] = clamp16(yy + 116130*cb)
		}
	}
}

// clamp16 clamps a 16.16 fixed-point value to a byte.
func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}
