package shard

import (
	"bytes"
	"context"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// gradient returns a w x h image whose colour depends on position and seed.
func gradient(w, h, seed int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x*255/max(w-1, 1) + seed), uint8(y*255/max(h-1, 1) + 3*seed), uint8(seed * 40), 255})
		}
	}
	return img
}

func jpegBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeaderOnly returns a PNG signature and an IHDR chunk (valid CRC)
// declaring w x h pixels, with no image data after it.
func pngHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := []byte("IHDR")
	chunk = append(chunk, byte(w>>24), byte(w>>16), byte(w>>8), byte(w),
		byte(h>>24), byte(h>>16), byte(h>>8), byte(h), 8, 2, 0, 0, 0)
	b.Write([]byte{0, 0, 0, 13})
	b.Write(chunk)
	c := crc32.ChecksumIEEE(chunk)
	b.Write([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})
	return b.Bytes()
}

// writeFile writes data to dir/rel, creating folders.
func writeFile(t testing.TB, dir, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeFolder writes perClass distinct JPEG images into each class folder.
func makeFolder(t testing.TB, classes []string, perClass int) string {
	t.Helper()
	dir := t.TempDir()
	for ci, c := range classes {
		for k := range perClass {
			writeFile(t, dir, c+"/img"+string(rune('a'+k%26))+string(rune('a'+k/26))+".jpg",
				jpegBytes(t, gradient(24+k%5, 20+ci, ci*7+k)))
		}
	}
	return dir
}

// load loads dir at size with default settings.
func load(t testing.TB, dir string, size int) (*Dataset, *Report) {
	t.Helper()
	cfg := DefaultLoadConfig()
	cfg.Dir, cfg.Size = dir, size
	d, rep, err := Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, rep
}

func containsStr(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }

func removeFile(dir, rel string) error { return os.Remove(filepath.Join(dir, filepath.FromSlash(rel))) }
