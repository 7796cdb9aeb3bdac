package shard

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// photoLike returns a 500x375 JPEG with texture, the size of the larger
// flowers photos.
func photoLike(b *testing.B) []byte {
	img := gradient(500, 375, 3)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range img.Pix {
		if i%4 != 3 {
			img.Pix[i] += uint8(r.IntN(40))
		}
	}
	return jpegBytes(b, img)
}

// BenchmarkDecodeResize decodes one 500x375 JPEG and makes its 32 px centre
// square: this package's planar area filter against golang.org/x/image/draw's
// scalers (the baselines) on the same decoded image.
func BenchmarkDecodeResize(b *testing.B) {
	data := photoLike(b)
	b.Run("planar-area", func(b *testing.B) {
		for b.Loop() {
			if _, err := Decode(data, 32, DefaultMaxPixels); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, k := range map[string]xdraw.Interpolator{"xdraw-bilinear": xdraw.BiLinear, "xdraw-catmullrom": xdraw.CatmullRom} {
		b.Run(name, func(b *testing.B) {
			dst := image.NewRGBA(image.Rect(0, 0, 32, 32))
			for b.Loop() {
				img, err := jpeg.Decode(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				sq := image.Rect(62, 0, 437, 375)
				k.Scale(dst, dst.Bounds(), img, sq, xdraw.Src, nil)
			}
		})
	}
	b.Run("decode-only", func(b *testing.B) {
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
