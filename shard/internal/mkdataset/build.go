package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/whorl-ml/whorl/shard"
)

// options are mkdataset's flags.
type options struct {
	Src, Out      string
	Size, Quality int
}

// credit is one attribution line of the source LICENSE.txt whose photo
// exists in the source folder.
type credit struct {
	class, path, line string
}

// run builds flowers.zip and LICENSE.txt in o.Out.
func run(ctx context.Context, o options) error {
	if o.Size < shard.MinSize || o.Size > 256 || o.Quality < 1 || o.Quality > 100 {
		return fmt.Errorf("size %d (want %d..256) or quality %d (want 1..100) out of range", o.Size, shard.MinSize, o.Quality)
	}
	header, credits, err := readCredits(o.Src)
	if err != nil {
		return err
	}
	archive, err := buildArchive(ctx, o, credits)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", o.Out, err)
	}
	if err := os.WriteFile(filepath.Join(o.Out, "flowers.zip"), archive, 0o644); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	lic := licenseText(header, credits, o)
	if err := os.WriteFile(filepath.Join(o.Out, "LICENSE.txt"), []byte(lic), 0o644); err != nil {
		return fmt.Errorf("write license: %w", err)
	}
	fmt.Printf("mkdataset: %d photos, %d bytes of archive in %s\n", len(credits), len(archive), o.Out)
	return nil
}

// readCredits parses src/LICENSE.txt: the header (lines before the first
// credit) and the credit lines "class/file.jpg CC-BY by ...". A credit's
// class may be the plural of the folder name (roses -> rose); credits whose
// photo is not in the folder are dropped.
func readCredits(src string) (header []string, credits []credit, err error) {
	f, err := os.Open(filepath.Join(src, "LICENSE.txt"))
	if err != nil {
		return nil, nil, fmt.Errorf("read credits: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	seen := map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		p, _, isCredit := strings.Cut(line, " CC-BY")
		if !isCredit {
			if len(credits) == 0 {
				header = append(header, line)
			}
			continue
		}
		if c, ok := matchCredit(src, p, line); ok && !seen[c.path] {
			seen[c.path] = true
			credits = append(credits, c)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read credits: %w", err)
	}
	sort.Slice(credits, func(i, j int) bool { return credits[i].path < credits[j].path })
	return header, credits, nil
}

// matchCredit finds the photo a credit names in the source folder.
func matchCredit(src, p, line string) (credit, bool) {
	class, name, ok := strings.Cut(p, "/")
	if !ok || strings.Contains(name, "/") {
		return credit{}, false
	}
	for _, folder := range []string{class, strings.TrimSuffix(class, "s")} {
		st, err := os.Stat(filepath.Join(src, folder, name))
		if err == nil && st.Mode().IsRegular() {
			return credit{class: folder, path: folder + "/" + name, line: line}, true
		}
	}
	return credit{}, false
}

// buildArchive decodes the credited photos at o.Size and packs them as
// JPEGs into a tar with fixed metadata, sorted by path.
func buildArchive(ctx context.Context, o options, credits []credit) ([]byte, error) {
	var classes []string
	index := map[string]int{}
	for _, c := range credits {
		if _, ok := index[c.class]; !ok {
			index[c.class] = -1
			classes = append(classes, c.class)
		}
	}
	sort.Strings(classes)
	for i, c := range classes {
		index[c] = i
	}
	items := make([]shard.Item, len(credits))
	for i, c := range credits {
		items[i] = shard.Item{Path: c.path, Class: index[c.class]}
	}
	cfg := shard.LoadConfig{Size: o.Size, MaxPixels: shard.DefaultMaxPixels, Strict: true}
	d, _, err := shard.LoadSource(ctx, cfg, shard.FolderSource{Dir: o.Src}, classes, items)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", o.Src, err)
	}
	return packArchive(d, o.Quality)
}

// packArchive encodes every image of d as a JPEG entry of a zip archive,
// stored uncompressed (JPEG does not compress further) with fixed metadata.
func packArchive(d *shard.Dataset, quality int) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, it := range d.Items {
		h := &zip.FileHeader{Name: it.Path, Method: zip.Store, Modified: time.Date(2018, 9, 1, 0, 0, 0, 0, time.UTC)}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w", it.Path, err)
		}
		if err := encodeJPEG(w, d.Image(i), d.Size, quality); err != nil {
			return nil, fmt.Errorf("encode %s: %w", it.Path, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close archive: %w", err)
	}
	return buf.Bytes(), nil
}

// encodeJPEG writes size x size HWC RGB pixels as a JPEG.
func encodeJPEG(w io.Writer, px []uint8, size, quality int) error {
	return jpeg.Encode(w, rgbImage(px, size), &jpeg.Options{Quality: quality})
}

// rgbImage wraps HWC RGB bytes as an opaque image.RGBA.
func rgbImage(px []uint8, size int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for p := range size * size {
		copy(img.Pix[p*4:p*4+3], px[p*3:p*3+3])
		img.Pix[p*4+3] = 255
	}
	return img
}

// licenseText is the attribution shipped beside the archive: the source
// header, what was done to the photos, and the credit of each one.
func licenseText(header []string, credits []credit, o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "whorl's embedded flowers set: %d photos, each cut to its centred square and resized to %dx%d\n",
		len(credits), o.Size, o.Size)
	b.WriteString("pixels (JPEG quality " + fmt.Sprint(o.Quality) + ") by `make dataset`. Folder names follow the Kaggle\n")
	b.WriteString("flowers-recognition copy (rose, sunflower, tulip for roses, sunflowers, tulips below).\n")
	b.WriteString("The original notice and the credit of every included photo follow.\n")
	for _, l := range header {
		b.WriteString(l + "\n")
	}
	for _, c := range credits {
		b.WriteString(c.line + "\n")
	}
	return b.String()
}
