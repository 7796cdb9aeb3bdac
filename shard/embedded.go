package shard

import (
	"archive/zip"
	"bytes"
	_ "embed" // the embedded data set
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// The embedded set: the CC BY 2.0 photos of the flowers data set, as small
// JPEGs in one zip archive (class/file.jpg), and their attribution.
// Rebuilt by `make dataset` (shard/internal/mkdataset).
var (
	//go:embed embedded/flowers.zip
	embeddedZip []byte
	//go:embed embedded/LICENSE.txt
	embeddedLicense string
)

// EmbeddedSize is the side of the embedded photos in pixels (mkdataset's
// -size); Load refuses larger training sizes for them.
const EmbeddedSize = 48

// EmbeddedLicense returns the license and attribution text of the embedded
// photos (Creative Commons Attribution 2.0, one credit line per photo).
func EmbeddedLicense() string { return embeddedLicense }

// embeddedSet is the parsed archive.
type embeddedSet struct {
	listing *listing
	files   MemSource
}

// embedded parses the archive once.
var embedded = sync.OnceValues(func() (embeddedSet, error) {
	l, files, err := parseArchive(embeddedZip)
	return embeddedSet{listing: l, files: files}, err
})

// EmbeddedSource returns the embedded set's files, keyed by Item.Path
// ("class/file.jpg"); the map is shared and must not be modified.
func EmbeddedSource() (MemSource, error) {
	e, err := embedded()
	return e.files, err
}

// embeddedListing returns the listing and source of the embedded set.
func embeddedListing() (*listing, Source, error) {
	e, err := embedded()
	if err != nil {
		return nil, nil, err
	}
	// Copy: Load appends to the listing's skipped list.
	l := *e.listing
	return &l, e.files, nil
}

// parseArchive reads a zip of class/file entries into a listing and a
// MemSource. Entries that are not image files one level deep are refused.
func parseArchive(data []byte) (*listing, MemSource, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, nil, fmt.Errorf("read embedded archive: %w", err)
	}
	files := MemSource{}
	byClass := map[string][]string{}
	for _, f := range zr.File {
		class, name, ok := strings.Cut(f.Name, "/")
		if !ok || class == "" || strings.Contains(name, "/") || !isImageName(name) || files[f.Name] != nil {
			return nil, nil, fmt.Errorf("read embedded archive: unexpected entry %q", f.Name)
		}
		b, err := readZipFile(f)
		if err != nil {
			return nil, nil, err
		}
		files[f.Name] = b
		byClass[class] = append(byClass[class], f.Name)
	}
	return archiveListing(byClass), files, nil
}

// readZipFile returns the bytes of one archive entry.
func readZipFile(f *zip.File) ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("read embedded archive entry %s: %w", f.Name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read embedded archive entry %s: %w", f.Name, err)
	}
	return b, nil
}

// archiveListing sorts classes and paths into a listing.
func archiveListing(byClass map[string][]string) *listing {
	l := &listing{}
	for c := range byClass {
		l.classes = append(l.classes, c)
	}
	sort.Strings(l.classes)
	for ci, c := range l.classes {
		paths := byClass[c]
		sort.Strings(paths)
		for _, p := range paths {
			l.items = append(l.items, Item{Path: p, Class: ci})
		}
	}
	return l
}
