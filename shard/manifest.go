package shard

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/whorl-ml/whorl/internal/atomicfile"
)

// ManifestVersion is the version of the manifest format written.
const ManifestVersion = 1

// Split names used in a manifest.
const (
	SplitTest      = "test"
	SplitLabeled   = "labeled"
	SplitUnlabeled = "unlabeled"
)

// Manifest records a split so a run can be audited and repeated.
type Manifest struct {
	// Version is ManifestVersion.
	Version int `json:"version"`
	// Classes are the class names in index order.
	Classes []string `json:"classes"`
	// Images are the images of the split, sorted by path.
	Images []ManifestImage `json:"images"`
	// Skipped are the image files left out as unreadable, sorted by path.
	Skipped []Skipped `json:"skipped,omitempty"`
}

// ManifestImage is one image of a Manifest. Split is "test", "labeled"
// or "unlabeled" (the training set is labeled plus unlabeled).
type ManifestImage struct {
	// Path is relative to the data folder, with forward slashes.
	Path string `json:"path"`
	// SHA256 is the lowercase hex SHA-256 of the file's bytes.
	SHA256 string `json:"sha256"`
	// Class is the class name.
	Class string `json:"class"`
	// Split is SplitTest, SplitLabeled or SplitUnlabeled.
	Split string `json:"split"`
}

// Manifest records split s of d; images in no split are left out. Images
// are sorted by path.
func (d *Dataset) Manifest(s Split) Manifest {
	m := Manifest{Version: ManifestVersion, Classes: append([]string(nil), d.Classes...)}
	for _, part := range []struct {
		name string
		idx  []int
	}{{SplitTest, s.Test}, {SplitLabeled, s.Labeled}, {SplitUnlabeled, s.Unlabeled}} {
		for _, i := range part.idx {
			it := d.Items[i]
			m.Images = append(m.Images, ManifestImage{Path: it.Path, SHA256: it.SHA256,
				Class: d.Classes[it.Class], Split: part.name})
		}
	}
	sort.Slice(m.Images, func(a, b int) bool { return m.Images[a].Path < m.Images[b].Path })
	return m
}

// WriteManifest writes m as indented JSON to path atomically
// (internal/atomicfile).
func WriteManifest(path string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// ReadManifest reads and checks a manifest written by WriteManifest.
func ReadManifest(path string) (Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w: %v", path, ErrManifest, err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", path, err)
	}
	return m, nil
}

// Validate checks the version, that classes are distinct and that every
// image has a unique path, a known class and a known split.
func (m Manifest) Validate() error {
	if m.Version != ManifestVersion {
		return errorf(ErrManifest, "version %d, want %d", m.Version, ManifestVersion)
	}
	classes := map[string]bool{}
	for _, c := range m.Classes {
		if classes[c] {
			return errorf(ErrManifest, "class %q listed twice", c)
		}
		classes[c] = true
	}
	paths := map[string]bool{}
	for _, im := range m.Images {
		switch {
		case paths[im.Path]:
			return errorf(ErrManifest, "image %s listed twice", im.Path)
		case !classes[im.Class]:
			return errorf(ErrManifest, "image %s has unknown class %q", im.Path, im.Class)
		case im.Split != SplitTest && im.Split != SplitLabeled && im.Split != SplitUnlabeled:
			return errorf(ErrManifest, "image %s has unknown split %q", im.Path, im.Split)
		}
		paths[im.Path] = true
	}
	return nil
}

// ApplyManifest returns the split m records over d. It fails, naming the
// file, if a listed image is not in d (missing, or skipped as bad), has
// other bytes than recorded (changed) or another class, or if the classes
// differ.
func ApplyManifest(d *Dataset, m Manifest) (Split, error) {
	if err := m.Validate(); err != nil {
		return Split{}, err
	}
	if fmt.Sprint(m.Classes) != fmt.Sprint(d.Classes) {
		return Split{}, errorf(ErrManifest, "manifest classes %q, data classes %q", m.Classes, d.Classes)
	}
	byPath := make(map[string]int, len(d.Items))
	for i, it := range d.Items {
		byPath[it.Path] = i
	}
	var s Split
	for _, im := range m.Images {
		i, ok := byPath[im.Path]
		if !ok {
			return Split{}, errorf(ErrManifest, "%s: listed in the manifest but not in the data (missing, or skipped as bad)", im.Path)
		}
		it := d.Items[i]
		if it.SHA256 != im.SHA256 {
			return Split{}, errorf(ErrManifest, "%s: changed since the manifest (sha256 %s, manifest %s)", im.Path, it.SHA256, im.SHA256)
		}
		if d.Classes[it.Class] != im.Class {
			return Split{}, errorf(ErrManifest, "%s: class %s, manifest %s", im.Path, d.Classes[it.Class], im.Class)
		}
		switch im.Split {
		case SplitTest:
			s.Test = append(s.Test, i)
		case SplitLabeled:
			s.Labeled = append(s.Labeled, i)
		default:
			s.Unlabeled = append(s.Unlabeled, i)
		}
	}
	s.Train = append(append([]int(nil), s.Labeled...), s.Unlabeled...)
	for _, l := range [][]int{s.Train, s.Test, s.Labeled, s.Unlabeled} {
		sort.Ints(l)
	}
	return s, nil
}

// Items returns the manifest's images as Items (class indices into
// m.Classes, SHA-256 set), sorted by class then path: what LoadSource needs
// to decode exactly the manifest's files from any Source, checking each
// file's hash.
func (m Manifest) Items() []Item {
	index := make(map[string]int, len(m.Classes))
	for i, c := range m.Classes {
		index[c] = i
	}
	items := make([]Item, len(m.Images))
	for i, im := range m.Images {
		items[i] = Item{Path: im.Path, SHA256: im.SHA256, Class: index[im.Class]}
	}
	sort.Slice(items, func(a, b int) bool {
		if items[a].Class != items[b].Class {
			return items[a].Class < items[b].Class
		}
		return items[a].Path < items[b].Path
	})
	return items
}
