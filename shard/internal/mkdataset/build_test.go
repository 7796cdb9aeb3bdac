package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/shard"
)

// photo writes a small JPEG at dir/rel.
func photo(t *testing.T, dir, rel string, seed int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40+seed, 30))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*seed + seed)
	}
	img.Set(0, 0, color.White)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuildOnlyCreditedAndReproducible checks that only credited photos are
// packed (plural class names map to singular folders), that the license
// keeps the header and their credits, and that two builds are identical.
func TestBuildOnlyCreditedAndReproducible(t *testing.T) {
	src := t.TempDir()
	photo(t, src, "daisy/1_n.jpg", 1)
	photo(t, src, "daisy/2_n.jpg", 2) // not credited
	photo(t, src, "rose/3_m.jpg", 3)
	photo(t, src, "rose/4.jpg", 4)
	lic := "https://example.invalid/flowers.zip\n\nAll images are CC BY 2.0.\n\n" +
		"daisy/1_n.jpg CC-BY by A - https://example.invalid/1\n" +
		"roses/3_m.jpg CC-BY by B - https://example.invalid/3\n" +
		"tulips/3_m.jpg CC-BY by B - https://example.invalid/3\n" + // names a file not in tulip/
		"roses/4.jpg CC-BY https://example.invalid/4 - by C\n" +
		"roses/9.jpg CC-BY by D - https://example.invalid/9\n" // missing photo
	if err := os.WriteFile(filepath.Join(src, "LICENSE.txt"), []byte(lic), 0o644); err != nil {
		t.Fatal(err)
	}
	var sums [2][32]byte
	for i := range sums {
		out := filepath.Join(t.TempDir(), "emb")
		if err := run(context.Background(), options{Src: src, Out: out, Size: 16, Quality: 90}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "flowers.zip"))
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(b)
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		if want := []string{"daisy/1_n.jpg", "rose/3_m.jpg", "rose/4.jpg"}; !slices.Equal(names, want) {
			t.Fatalf("archive holds %v, want %v", names, want)
		}
		l, err := os.ReadFile(filepath.Join(out, "LICENSE.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"All images are CC BY 2.0.", "daisy/1_n.jpg CC-BY by A", "roses/3_m.jpg CC-BY by B", "roses/4.jpg CC-BY"} {
			if !strings.Contains(string(l), want) {
				t.Fatalf("license lacks %q:\n%s", want, l)
			}
		}
		if strings.Contains(string(l), "9.jpg") || strings.Contains(string(l), "tulips/") {
			t.Fatalf("license credits photos that are not included:\n%s", l)
		}
	}
	if sums[0] != sums[1] {
		t.Fatal("two builds from the same photos differ")
	}
}

// TestEmbeddedIsUpToDate checks the committed embedded set against the real
// photos, when they are present: the archive holds exactly the credited
// photos, and a sample of entries (every 29th) rebuilds byte for byte, so a
// change of the decoder or resizer that alters pixels must come with
// `make dataset`.
func TestEmbeddedIsUpToDate(t *testing.T) {
	src := "../../../../shared/data/flowers"
	if _, err := os.Stat(filepath.Join(src, "LICENSE.txt")); err != nil {
		t.Skipf("no flowers photos at %s", src)
	}
	_, credits, err := readCredits(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../embedded/flowers.zip")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != len(credits) || len(credits) != 3480 {
		t.Fatalf("archive has %d entries, %d credited photos; want 3480 of each", len(zr.File), len(credits))
	}
	for i, f := range zr.File {
		if f.Name != credits[i].path {
			t.Fatalf("entry %d is %s, want %s", i, f.Name, credits[i].path)
		}
		if i%29 != 0 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(f.Name)))
		if err != nil {
			t.Fatal(err)
		}
		px, err := shard.Decode(data, 48, shard.DefaultMaxPixels)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := encodeJPEG(&want, px, 48, 90); err != nil {
			t.Fatal(err)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%s differs from a rebuild (%v): run make dataset", f.Name, err)
		}
	}
}
