package shard

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/whorl-ml/whorl/internal/validate"
)

// SplitConfig says how MakeSplit divides a Dataset.
type SplitConfig struct {
	// Seed picks the split; the same seed and the same files give the same
	// split on any machine.
	Seed int64
	// TestFraction is the share of each class held out for test, in
	// [0, 1); used when TestPerClass is 0. Default 0.2.
	TestFraction float64
	// TestPerClass, when positive, holds out exactly this many images of
	// each class for test (the seed project uses 60).
	TestPerClass int
	// LabeledFraction is the share of each class's training images that
	// keep their labels, in (0, 1]; at least one per class. Default 0.1.
	LabeledFraction float64
}

// DefaultSplitConfig returns seed 0, 20% test, 10% labeled.
func DefaultSplitConfig() SplitConfig {
	return SplitConfig{TestFraction: 0.2, LabeledFraction: 0.1}
}

// Validate checks every field and returns all problems, each naming the
// field and its bound (errors.Is(err, ErrConfig)).
func (c SplitConfig) Validate() error {
	p := validate.New(ErrConfig, "SplitConfig.")
	if !(c.TestFraction >= 0 && c.TestFraction < 1) {
		p.Addf("TestFraction", "= %g, must be in [0, 1)", c.TestFraction)
	}
	if c.TestPerClass < 0 {
		p.Addf("TestPerClass", "= %d, must not be negative", c.TestPerClass)
	}
	if !(c.LabeledFraction > 0 && c.LabeledFraction <= 1) {
		p.Addf("LabeledFraction", "= %g, must be in (0, 1]", c.LabeledFraction)
	}
	return p.Err()
}

// Split holds indices into a Dataset, each list sorted ascending. Train is
// the disjoint union of Labeled and Unlabeled; Test is disjoint from Train.
type Split struct {
	// Train is every training image; Test the held-out images.
	Train, Test []int
	// Labeled are the training images whose labels are used; Unlabeled
	// the rest of Train.
	Labeled, Unlabeled []int
}

// MakeSplit makes the stratified split: per class, images ordered by a hash
// of (seed, SHA-256, path) give the first test share to Test and the rest to
// Train; then per class the training images ordered by a second hash give
// the first labeled share to Labeled. The result depends only on the seed
// and the set of files, not on the order of d.Items. A class must keep at
// least one training image.
func MakeSplit(d *Dataset, c SplitConfig) (Split, error) {
	if err := c.Validate(); err != nil {
		return Split{}, err
	}
	var s Split
	for ci, members := range classMembers(d) {
		n := len(members)
		nTest := c.TestPerClass
		if nTest == 0 {
			nTest = int(math.Round(c.TestFraction * float64(n)))
		}
		if nTest >= n {
			return Split{}, errorf(ErrSplit, "class %s has %d images; holding out %d for test leaves none to train on",
				d.Classes[ci], n, nTest)
		}
		orderBy(d, members, c.Seed, "test")
		s.Test = append(s.Test, members[:nTest]...)
		train := members[nTest:]
		s.Train = append(s.Train, train...)
		nLab := max(1, int(math.Round(c.LabeledFraction*float64(len(train)))))
		orderBy(d, train, c.Seed, "labeled")
		s.Labeled = append(s.Labeled, train[:nLab]...)
		s.Unlabeled = append(s.Unlabeled, train[nLab:]...)
	}
	for _, l := range [][]int{s.Train, s.Test, s.Labeled, s.Unlabeled} {
		sort.Ints(l)
	}
	return s, nil
}

// classMembers returns the indices of each class's images.
func classMembers(d *Dataset) [][]int {
	m := make([][]int, len(d.Classes))
	for i, it := range d.Items {
		m[it.Class] = append(m[it.Class], i)
	}
	return m
}

// orderBy sorts idx by the hash of (seed, purpose, SHA-256, path) of each
// image, ties (identical files at identical paths cannot occur) by path.
func orderBy(d *Dataset, idx []int, seed int64, purpose string) {
	keys := make(map[int][32]byte, len(idx))
	for _, i := range idx {
		h := sha256.New()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(seed))
		h.Write(b[:])
		h.Write([]byte(purpose + "\x00" + d.Items[i].SHA256 + "\x00" + d.Items[i].Path))
		keys[i] = [32]byte(h.Sum(nil))
	}
	sort.Slice(idx, func(a, b int) bool {
		ka, kb := keys[idx[a]], keys[idx[b]]
		if ka != kb {
			return string(ka[:]) < string(kb[:])
		}
		return d.Items[idx[a]].Path < d.Items[idx[b]].Path
	})
}

// InspectConfig is what Inspect loads and how it splits (`whorl data
// inspect`).
type InspectConfig struct {
	Load  LoadConfig
	Split SplitConfig
	// Manifest, when set, is a saved split to apply instead of making one
	// (ApplyManifest: a listed file that is missing or changed fails).
	Manifest string
	// WriteManifest, when set, is the file the split is saved to.
	WriteManifest string
}

// Inspection is what Inspect found: the data set, what was skipped and
// ignored, the split's sizes and the decoding time (`whorl data inspect
// --json`).
type Inspection struct {
	Source        string         `json:"source"`
	Classes       map[string]int `json:"classes"`
	Images        int            `json:"images"`
	Skipped       []Skipped      `json:"skipped"`
	Ignored       Ignored        `json:"ignored"`
	Split         SplitSizes     `json:"split"`
	Seed          int            `json:"seed"`
	Size          int            `json:"size"`
	Bytes         int64          `json:"bytes"`
	DecodeSeconds float64        `json:"decode_seconds"`
	Workers       int            `json:"workers"`

	classes  []string // the class names in order
	manifest string   // where the split was saved
}

// SplitSizes counts the images of each part of a split.
type SplitSizes struct {
	Train     int `json:"train"`
	Test      int `json:"test"`
	Labeled   int `json:"labeled"`
	Unlabeled int `json:"unlabeled"`
}

// Inspect loads a data set, splits it (or applies c.Manifest), saves the
// split when c.WriteManifest is set, and says what it found.
func Inspect(ctx context.Context, c InspectConfig) (Inspection, error) {
	d, rep, err := Load(ctx, c.Load)
	if err != nil {
		return Inspection{}, err
	}
	s, err := inspectSplit(d, c)
	if err != nil {
		return Inspection{}, fmt.Errorf("split %s: %w", rep.Source, err)
	}
	if c.WriteManifest != "" {
		if err := WriteManifest(c.WriteManifest, d.Manifest(s)); err != nil {
			return Inspection{}, err
		}
	}
	return Inspection{Source: rep.Source, Classes: rep.ClassCounts(), Images: d.Len(),
		Skipped: append([]Skipped{}, rep.Skipped...), Ignored: rep.Ignored,
		Split: SplitSizes{len(s.Train), len(s.Test), len(s.Labeled), len(s.Unlabeled)},
		Seed:  int(c.Split.Seed), Size: c.Load.Size, Bytes: rep.Bytes, DecodeSeconds: rep.Decode.Seconds(),
		Workers: rep.Workers, classes: rep.Classes, manifest: c.WriteManifest}, nil
}

// inspectSplit makes the seeded split, or applies c.Manifest.
func inspectSplit(d *Dataset, c InspectConfig) (Split, error) {
	if c.Manifest != "" {
		m, err := ReadManifest(c.Manifest)
		if err != nil {
			return Split{}, err
		}
		return ApplyManifest(d, m)
	}
	return MakeSplit(d, c.Split)
}

// Print writes the inspection for people.
func (s Inspection) Print(w io.Writer) {
	fmt.Fprintf(w, "data: %s: %d images in %d classes (%.1f MB read)\n", s.Source, s.Images, len(s.classes), float64(s.Bytes)/1e6)
	for _, c := range s.classes {
		fmt.Fprintf(w, "  %-20s %6d\n", c, s.Classes[c])
	}
	ig := s.Ignored
	fmt.Fprintf(w, "ignored: %d hidden, %d nested folders, %d non-image files, %d special files\n",
		ig.Hidden, ig.Folders, ig.NonImage, ig.Other)
	fmt.Fprintf(w, "skipped: %d\n", len(s.Skipped))
	for _, k := range s.Skipped {
		fmt.Fprintf(w, "  %s: %s\n", k.Path, k.Reason)
	}
	fmt.Fprintf(w, "split (seed %d): train %d (labeled %d, unlabeled %d), test %d\n",
		s.Seed, s.Split.Train, s.Split.Labeled, s.Split.Unlabeled, s.Split.Test)
	rate := float64(s.Images+len(s.Skipped)) / max(s.DecodeSeconds, 1e-9)
	fmt.Fprintf(w, "decode: %.2f s with %d workers at %d px (%.0f images/s)\n", s.DecodeSeconds, s.Workers, s.Size, rate)
	if s.manifest != "" {
		fmt.Fprintf(w, "manifest: %s\n", s.manifest)
	}
}
