package shard

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"os"
	"path/filepath"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// meanAbsDiff is the mean absolute difference of two byte slices.
func meanAbsDiff(a, b []uint8) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		s += d
	}
	return s / float64(len(a))
}

// ycck turns the Adobe CMYK test file into a YCCK one (transform 2).
func ycck(b []byte) []byte {
	c := append([]byte(nil), b...)
	i := bytes.Index(c, []byte("Adobe"))
	c[i+11] = 2
	return c
}

// TestDecodeFormats decodes each JPEG and PNG flavour and compares it with
// the lossless reference picture.
func TestDecodeFormats(t *testing.T) {
	const size = 24
	ref, err := Decode(readTestdata(t, "video-001.png"), size, DefaultMaxPixels)
	must(t, err)
	refImg, err := pngDecode(readTestdata(t, "video-001.png"))
	must(t, err)
	cmykRef, err := Decode(readTestdata(t, "video-001.cmyk.png"), size, DefaultMaxPixels)
	must(t, err)
	grayRef, err := Decode(readTestdata(t, "video-005.gray.png"), size, DefaultMaxPixels)
	must(t, err)
	for _, tc := range []struct {
		name string
		data []byte
		want []uint8
		tol  float64
	}{
		{"jpeg baseline", readTestdata(t, "video-001.jpeg"), ref, 3},
		{"jpeg progressive", readTestdata(t, "video-001.progressive.jpeg"), ref, 3},
		{"jpeg cmyk", readTestdata(t, "video-001.cmyk.jpeg"), cmykRef, 3},
		{"jpeg grayscale", readTestdata(t, "video-005.gray.jpeg"), grayRef, 3},
		{"png 16-bit", pngBytes(t, convert(refImg, image.NewRGBA64(refImg.Bounds()))), ref, 0.01},
		{"png palette", pngBytes(t, convert(refImg, image.NewPaletted(refImg.Bounds(), paletteOf(refImg)))), ref, 12},
		{"png opaque alpha", pngBytes(t, convert(refImg, image.NewNRGBA(refImg.Bounds()))), ref, 0.01},
		{"png gray 16-bit", pngBytes(t, convert(mustPNG(t, "video-005.gray.png"), image.NewGray16(image.Rect(0, 0, 0, 0)))), grayRef, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.data, size, DefaultMaxPixels)
			must(t, err)
			if d := meanAbsDiff(got, tc.want); d > tc.tol {
				t.Fatalf("mean abs difference %.2f from the reference, want <= %g", d, tc.tol)
			}
		})
	}
	// YCCK: the same data read through the YCCK transform decodes, to
	// different colours.
	y, err := Decode(ycck(readTestdata(t, "video-001.cmyk.jpeg")), size, DefaultMaxPixels)
	must(t, err)
	if meanAbsDiff(y, cmykRef) < 10 {
		t.Fatal("YCCK transform was ignored")
	}
}

// TestDecodeAlphaOverBlack checks transparent pixels become black.
func TestDecodeAlphaOverBlack(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := range 64 {
		img.Pix[i*4], img.Pix[i*4+1], img.Pix[i*4+2], img.Pix[i*4+3] = 200, 100, 50, 0
	}
	img.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 255})
	got, err := Decode(pngBytes(t, img), 8, DefaultMaxPixels)
	must(t, err)
	if got[0] != 200 || got[1] != 100 || got[2] != 50 || got[3] != 0 {
		t.Fatalf("got %v, want opaque pixel kept and transparent black", got[:6])
	}
}

// TestResizeGeometry checks the centre crop and the area filter on exact
// cases: a 4:1 shrink averages 4x4 blocks; the crop takes the middle.
func TestResizeGeometry(t *testing.T) {
	// 16x8 image: left quarter black, middle half blocks, right quarter white.
	img := image.NewGray(image.Rect(0, 0, 16, 8))
	for y := range 8 {
		for x := range 16 {
			v := uint8(0)
			switch {
			case x >= 12:
				v = 255
			case x >= 4:
				v = uint8(10 * ((x-4)/4 + 2*(y/4)))
			}
			img.SetGray(x, y, color.Gray{v})
		}
	}
	got, err := Decode(pngBytes(t, img), 2, DefaultMaxPixels)
	must(t, err)
	want := []uint8{0, 10, 20, 30}
	for p, w := range want {
		if got[p*3] != w || got[p*3+1] != w || got[p*3+2] != w {
			t.Fatalf("pixel %d = %v, want %d", p, got[p*3:p*3+3], w)
		}
	}
	// Enlarging a flat image keeps it flat.
	flat := image.NewGray(image.Rect(0, 0, 3, 5))
	draw.Draw(flat, flat.Rect, image.NewUniform(color.Gray{77}), image.Point{}, draw.Src)
	up, err := Decode(pngBytes(t, flat), 9, DefaultMaxPixels)
	must(t, err)
	for _, v := range up {
		if v != 77 {
			t.Fatalf("enlarged flat image has value %d", v)
		}
	}
}

// TestYCbCrPlanarMatchesRGB checks the planar JPEG path against converting
// every pixel to RGB first.
func TestYCbCrPlanarMatchesRGB(t *testing.T) {
	for _, name := range []string{"video-001.jpeg", "video-001.progressive.jpeg"} {
		img, err := decodeImage(readTestdata(t, name), DefaultMaxPixels)
		must(t, err)
		m := img.(*image.YCbCr)
		b := m.Bounds()
		s := min(b.Dx(), b.Dy())
		fast := make([]uint8, 20*20*3)
		resampleYCbCr(fast, m, float64(b.Dx()-s)/2, float64(b.Dy()-s)/2, float64(s), 20)
		rgba := image.NewRGBA(b)
		draw.Draw(rgba, b, m, b.Min, draw.Src)
		slow, err := Decode(pngBytes(t, rgba), 20, DefaultMaxPixels)
		must(t, err)
		if d := meanAbsDiff(fast, slow); d > 1 {
			t.Errorf("%s: planar path differs by %.2f on average", name, d)
		}
	}
}

// FuzzDecode feeds untrusted bytes to the decoder: it must return either an
// image of the right size or a BadImageError, never panic or hang.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"video-001.q50.jpeg"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add(jpegBytes(f, gradient(9, 7, 1)))
	f.Add(pngBytes(f, gradient(5, 11, 2)))
	f.Add(pngHeaderOnly(100000, 100000))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		px, err := Decode(data, 8, 1<<20)
		var bad *BadImageError
		switch {
		case err == nil && len(px) != 8*8*3:
			t.Fatalf("decoded %d bytes", len(px))
		case err != nil && (!errors.As(err, &bad) || !errors.Is(err, ErrBadImage)):
			t.Fatalf("error %v is not a BadImageError", err)
		}
	})
}

func pngDecode(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}

func mustPNG(t *testing.T, name string) image.Image {
	img, err := pngDecode(readTestdata(t, name))
	must(t, err)
	return img
}

// convert draws src into dst (a zero-sized dst takes src's bounds).
func convert(src image.Image, dst draw.Image) image.Image {
	if dst.Bounds().Empty() {
		dst = image.NewGray16(src.Bounds())
	}
	draw.Draw(dst, src.Bounds(), src, src.Bounds().Min, draw.Src)
	return dst
}

// paletteOf returns a 256-colour palette: a 6x6x6 cube plus grays.
func paletteOf(image.Image) color.Palette {
	var p color.Palette
	for r := range 6 {
		for g := range 6 {
			for b := range 6 {
				p = append(p, color.RGBA{uint8(r * 51), uint8(g * 51), uint8(b * 51), 255})
			}
		}
	}
	for len(p) < 256 {
		v := uint8((len(p) - 216) * 6)
		p = append(p, color.RGBA{v, v, v, 255})
	}
	return p
}
