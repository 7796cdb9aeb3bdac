package shard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// synthetic builds a Dataset of the given class sizes without decoding:
// paths and hashes are derived from the position.
func synthetic(sizes ...int) *Dataset {
	d := &Dataset{Size: 1}
	for c, n := range sizes {
		d.Classes = append(d.Classes, fmt.Sprintf("c%d", c))
		for k := range n {
			d.Items = append(d.Items, Item{Path: fmt.Sprintf("c%d/%04d.jpg", c, k),
				SHA256: fmt.Sprintf("%064x", c*100000+k), Class: c})
		}
	}
	d.pix = make([]uint8, len(d.Items)*3)
	return d
}

// paths maps split indices to paths, sorted.
func paths(d *Dataset, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = d.Items[j].Path
	}
	slices.Sort(out)
	return out
}

func TestSplitDeterministicAndOrderIndependent(t *testing.T) {
	d := synthetic(50, 73, 31)
	cfg := SplitConfig{Seed: 7, TestFraction: 0.2, LabeledFraction: 0.1}
	s1, err := MakeSplit(d, cfg)
	must(t, err)
	// The same files listed in another order give the same split by path.
	shuffled := synthetic(50, 73, 31)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled.Items), func(i, j int) {
		shuffled.Items[i], shuffled.Items[j] = shuffled.Items[j], shuffled.Items[i]
	})
	s2, err := MakeSplit(shuffled, cfg)
	must(t, err)
	for _, part := range []struct {
		name string
		a, b []int
	}{{"train", s1.Train, s2.Train}, {"test", s1.Test, s2.Test}, {"labeled", s1.Labeled, s2.Labeled}} {
		if !slices.Equal(paths(d, part.a), paths(shuffled, part.b)) {
			t.Errorf("%s differs when the listing order changes", part.name)
		}
	}
	s3, err := MakeSplit(d, SplitConfig{Seed: 8, TestFraction: 0.2, LabeledFraction: 0.1})
	must(t, err)
	if slices.Equal(s1.Test, s3.Test) || slices.Equal(s1.Labeled, s3.Labeled) {
		t.Error("seeds 7 and 8 gave the same split")
	}
}

func TestSplitStratified(t *testing.T) {
	d := synthetic(50, 73, 31, 5)
	for _, tc := range []struct {
		cfg           SplitConfig
		test, labeled []int // per class
	}{
		{SplitConfig{Seed: 1, TestFraction: 0.2, LabeledFraction: 0.1}, []int{10, 15, 6, 1}, []int{4, 6, 3, 1}},
		{SplitConfig{Seed: 1, TestPerClass: 3, LabeledFraction: 0.5}, []int{3, 3, 3, 3}, []int{24, 35, 14, 1}},
		{SplitConfig{Seed: 2, TestFraction: 0, LabeledFraction: 1}, []int{0, 0, 0, 0}, []int{50, 73, 31, 5}},
	} {
		s, err := MakeSplit(d, tc.cfg)
		must(t, err)
		if got := perClass(d, s.Test); !slices.Equal(got, tc.test) {
			t.Errorf("%+v: test per class %v, want %v", tc.cfg, got, tc.test)
		}
		if got := perClass(d, s.Labeled); !slices.Equal(got, tc.labeled) {
			t.Errorf("%+v: labeled per class %v, want %v", tc.cfg, got, tc.labeled)
		}
		checkPartition(t, d, s)
	}
}

// perClass counts indices per class.
func perClass(d *Dataset, idx []int) []int {
	c := make([]int, len(d.Classes))
	for _, i := range idx {
		c[d.Items[i].Class]++
	}
	return c
}

// checkPartition checks train+test cover the set once and labeled +
// unlabeled partition train.
func checkPartition(t *testing.T, d *Dataset, s Split) {
	t.Helper()
	seen := make([]int, d.Len())
	for _, i := range s.Train {
		seen[i]++
	}
	for _, i := range s.Test {
		seen[i] += 10
	}
	for i, v := range seen {
		if v != 1 && v != 10 {
			t.Fatalf("image %d in train %d times and test %d times", i, v%10, v/10)
		}
	}
	lu := append(append([]int(nil), s.Labeled...), s.Unlabeled...)
	slices.Sort(lu)
	if !slices.Equal(lu, s.Train) {
		t.Fatal("labeled + unlabeled is not train")
	}
}

func TestSplitErrors(t *testing.T) {
	d := synthetic(5, 60)
	for _, tc := range []struct {
		cfg  SplitConfig
		want error
	}{
		{SplitConfig{TestPerClass: 60, LabeledFraction: 0.1}, ErrSplit},
		{SplitConfig{TestFraction: 1, LabeledFraction: 0.1}, ErrConfig},
		{SplitConfig{TestFraction: 0.2, LabeledFraction: 0}, ErrConfig},
		{SplitConfig{TestPerClass: -1, LabeledFraction: 0.1}, ErrConfig},
	} {
		if _, err := MakeSplit(d, tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.cfg, err, tc.want)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := makeFolder(t, []string{"a", "b"}, 6)
	d, _ := load(t, dir, 8)
	s, err := MakeSplit(d, DefaultSplitConfig())
	must(t, err)
	path := filepath.Join(t.TempDir(), "split.json")
	must(t, WriteManifest(path, d.Manifest(s)))
	m, err := ReadManifest(path)
	must(t, err)
	got, err := ApplyManifest(d, m)
	must(t, err)
	if fmt.Sprint(got) != fmt.Sprint(s) {
		t.Fatalf("applied %v, want %v", got, s)
	}
	// A worker decoding the manifest's files from a Source gets the same
	// images.
	w, _, err := LoadSource(context.Background(), LoadConfig{Size: 8, MaxPixels: DefaultMaxPixels},
		FolderSource{Dir: dir}, m.Classes, m.Items())
	must(t, err)
	if w.Len() != d.Len() || string(w.pix) != string(d.pix) {
		t.Fatal("LoadSource of the manifest's items differs from Load")
	}

	// A changed file and a missing file each fail naming the file.
	orig, err := os.ReadFile(filepath.Join(dir, "a", "imgba.jpg"))
	must(t, err)
	writeFile(t, dir, "a/imgba.jpg", jpegBytes(t, gradient(30, 30, 99)))
	d2, _ := load(t, dir, 8)
	if _, err := ApplyManifest(d2, m); !errors.Is(err, ErrManifest) || !containsStr(err.Error(), "a/imgba.jpg: changed") {
		t.Errorf("changed file: %v", err)
	}
	writeFile(t, dir, "a/imgba.jpg", orig)
	must(t, removeFile(dir, "b/imgca.jpg"))
	d3, _ := load(t, dir, 8)
	if _, err := ApplyManifest(d3, m); !errors.Is(err, ErrManifest) || !containsStr(err.Error(), "b/imgca.jpg") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzManifest feeds untrusted manifest files to ReadManifest and
// ApplyManifest: they must fail with an error or give a split whose parts
// partition the listed images, never panic.
func FuzzManifest(f *testing.F) {
	d := synthetic(4, 6)
	s, err := MakeSplit(d, DefaultSplitConfig())
	if err != nil {
		f.Fatal(err)
	}
	good, err := json.Marshal(d.Manifest(s))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"classes":["c0","c0"],"images":[]}`))
	f.Add([]byte(`{"version":1,"classes":["c0","c1"],"images":[{"path":"../x","sha256":"","class":"c1","split":"test"}]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "m.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ReadManifest(p)
		if err != nil {
			return
		}
		s, err := ApplyManifest(d, m)
		if err != nil {
			return
		}
		if len(s.Train)+len(s.Test) != len(m.Images) || len(s.Labeled)+len(s.Unlabeled) != len(s.Train) {
			t.Fatalf("split %v does not partition %d images", s, len(m.Images))
		}
	})
}

// TestInspect: Inspect loads, splits and saves the split, and applying
// that manifest gives the same sizes; its print names every class.
func TestInspect(t *testing.T) {
	dir := makeFolder(t, []string{"daisy", "rose"}, 10)
	manifest := filepath.Join(t.TempDir(), "split.json")
	lc := DefaultLoadConfig()
	lc.Dir, lc.Size = dir, 8
	c := InspectConfig{Load: lc, Split: SplitConfig{Seed: 3, TestFraction: 0.2, LabeledFraction: 0.5}, WriteManifest: manifest}
	in, err := Inspect(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	want := SplitSizes{Train: 16, Test: 4, Labeled: 8, Unlabeled: 8}
	if in.Images != 20 || in.Split != want || in.Seed != 3 || in.Size != 8 || in.Classes["rose"] != 10 {
		t.Errorf("inspection %+v, want 20 images split %+v", in, want)
	}
	c.Manifest, c.WriteManifest, c.Split.Seed = manifest, "", 9
	again, err := Inspect(context.Background(), c)
	if err != nil || again.Split != in.Split {
		t.Errorf("with the manifest: %+v, %v; want the split %+v", again.Split, err, in.Split)
	}
	var b bytes.Buffer
	in.Print(&b)
	for _, s := range []string{"20 images in 2 classes", "daisy", "rose", "split (seed 3): train 16 (labeled 8, unlabeled 8), test 4", "manifest: " + manifest} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("print lacks %q:\n%s", s, b.String())
		}
	}
}
