package shard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLoadBadFiles makes each kind of bad file for real and checks that a
// lenient load skips it with the right reason and a strict load fails on it.
func TestLoadBadFiles(t *testing.T) {
	good := jpegBytes(t, gradient(30, 20, 1))
	goodPNG := pngBytes(t, gradient(30, 20, 2))
	cases := []struct {
		name, file string
		data       []byte
		kind       string
	}{
		{"zero bytes", "a/empty.jpg", nil, KindEmpty},
		{"truncated jpeg", "a/trunc.jpg", good[:len(good)/2], KindTruncated},
		{"truncated png", "a/trunc.png", goodPNG[:len(goodPNG)-30], KindTruncated},
		{"not an image", "a/text.jpg", []byte("hello, I am not a JPEG at all"), KindNotImage},
		{"gif named png", "a/anim.png", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), KindUnsupported},
		{"undecodable", "a/corrupt.jpg", corrupt(good), KindUndecodable},
		{"too large", "a/huge.png", pngHeaderOnly(10000, 5000), KindTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := makeFolder(t, []string{"a", "b"}, 3)
			writeFile(t, dir, tc.file, tc.data)
			d, rep := load(t, dir, 8)
			if d.Len() != 6 || len(rep.Skipped) != 1 {
				t.Fatalf("kept %d images, skipped %v; want 6 and the bad file", d.Len(), rep.Skipped)
			}
			if s := rep.Skipped[0]; s.Path != tc.file || !strings.HasPrefix(s.Reason, tc.kind+":") {
				t.Fatalf("skipped %+v, want path %s reason %q...", s, tc.file, tc.kind)
			}
			cfg := LoadConfig{Dir: dir, Size: 8, MaxPixels: DefaultMaxPixels, Strict: true}
			_, _, err := Load(context.Background(), cfg)
			if !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), tc.file) {
				t.Fatalf("strict load: %v, want ErrBadImage naming %s", err, tc.file)
			}
		})
	}
}

// corrupt keeps a JPEG's headers and scrambles its entropy-coded data.
func corrupt(b []byte) []byte {
	c := append([]byte(nil), b...)
	sos := strings.Index(string(c), "\xff\xda")
	for i := sos + 20; i < len(c)-2; i++ {
		c[i] = 0xff
	}
	return c
}

// TestLoadLayoutErrors checks the fatal layout errors name the path.
func TestLoadLayoutErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	one := makeFolder(t, []string{"only"}, 2)
	empty := makeFolder(t, []string{"a", "b"}, 2)
	if err := os.Mkdir(filepath.Join(empty, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	allBad := makeFolder(t, []string{"a", "b"}, 2)
	writeFile(t, allBad, "c/x.jpg", []byte("junk"))
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, filepath.Dir(file), "f", []byte("x"))
	for _, tc := range []struct{ name, dir, mention string }{
		{"missing folder", missing, missing},
		{"not a folder", file, file},
		{"one class", one, "need at least 2"},
		{"empty class", empty, filepath.Join(empty, "c")},
		{"class without decodable images", allBad, "class c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLoadConfig()
			cfg.Dir = tc.dir
			_, _, err := Load(context.Background(), cfg)
			if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v, want ErrLayout mentioning %q", err, tc.mention)
			}
		})
	}
}

// TestLoadIgnoresAndSymlinks checks hidden, nested and non-image entries are
// counted, extensions match in any case, and symlinks are followed safely.
func TestLoadIgnoresAndSymlinks(t *testing.T) {
	dir := makeFolder(t, []string{"a", "b"}, 2)
	img := jpegBytes(t, gradient(20, 20, 9))
	writeFile(t, dir, "a/UPPER.JPEG", img)
	writeFile(t, dir, "b/mixed.Png", pngBytes(t, gradient(20, 20, 4)))
	writeFile(t, dir, "a/.hidden.jpg", img)
	writeFile(t, dir, ".hiddenclass/x.jpg", img)
	writeFile(t, dir, "a/nested/deep.jpg", img)
	writeFile(t, dir, "a/notes.txt", []byte("x"))
	writeFile(t, dir, "README", []byte("x"))
	must(t, os.Symlink(filepath.Join(dir, "a", "UPPER.JPEG"), filepath.Join(dir, "b", "link.jpg")))
	must(t, os.Symlink(dir, filepath.Join(dir, "a", "loop")))                                     // nested folder: ignored
	must(t, os.Symlink(filepath.Join(dir, "b", "self.jpg"), filepath.Join(dir, "b", "self.jpg"))) // ELOOP
	must(t, os.Symlink(filepath.Join(dir, "gone.jpg"), filepath.Join(dir, "a", "broken.jpg")))
	d, rep := load(t, dir, 8)
	if got := rep.ClassCounts(); got["a"] != 3 || got["b"] != 4 || d.Len() != 7 {
		t.Errorf("counts %v (len %d), want a:3 b:4", got, d.Len())
	}
	want := Ignored{Hidden: 2, Folders: 2, NonImage: 2}
	if rep.Ignored != want {
		t.Errorf("ignored %+v, want %+v", rep.Ignored, want)
	}
	if len(rep.Skipped) != 2 || rep.Skipped[0].Path != "a/broken.jpg" || rep.Skipped[1].Path != "b/self.jpg" {
		t.Errorf("skipped %+v, want the broken and the self-referential link", rep.Skipped)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLoadOrderAndHashes checks items are sorted and hashed, and that the
// result does not depend on the number of workers.
func TestLoadOrderAndHashes(t *testing.T) {
	dir := makeFolder(t, []string{"b", "a", "c"}, 5)
	var first *Dataset
	for _, w := range []int{1, 3} {
		cfg := LoadConfig{Dir: dir, Size: 12, MaxPixels: DefaultMaxPixels, Workers: w}
		d, rep, err := Load(context.Background(), cfg)
		must(t, err)
		if strings.Join(d.Classes, ",") != "a,b,c" || rep.Workers != w {
			t.Fatalf("classes %v workers %d", d.Classes, rep.Workers)
		}
		for i := 1; i < d.Len(); i++ {
			p, q := d.Items[i-1], d.Items[i]
			if p.Class > q.Class || (p.Class == q.Class && p.Path >= q.Path) || len(q.SHA256) != 64 {
				t.Fatalf("items out of order or unhashed: %+v then %+v", p, q)
			}
		}
		if first == nil {
			first = d
			continue
		}
		for i := range d.Len() {
			if string(d.Image(i)) != string(first.Image(i)) || d.Items[i] != first.Items[i] {
				t.Fatalf("image %d differs between 1 and 3 workers", i)
			}
		}
	}
}

// TestLoadCancel checks a cancelled context stops the load with its error.
func TestLoadCancel(t *testing.T) {
	dir := makeFolder(t, []string{"a", "b"}, 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := DefaultLoadConfig()
	cfg.Dir = dir
	if _, _, err := Load(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestLoadConfigValidate checks each bound names its field.
func TestLoadConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		mut   func(*LoadConfig)
		field string
	}{
		{func(c *LoadConfig) { c.Size = 2 }, "Size"},
		{func(c *LoadConfig) { c.Size = 5000 }, "Size"},
		{func(c *LoadConfig) { c.MaxPixels = 0 }, "MaxPixels"},
		{func(c *LoadConfig) { c.Workers = -1 }, "Workers"},
	} {
		c := DefaultLoadConfig()
		tc.mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v, want ErrConfig naming %s", c, err, tc.field)
		}
	}
	if err := DefaultLoadConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestLoadRefusesSizeTheDataCannotGive loads 16 px photos at 16 (accepted) and 32 px
// (refused, naming the size, the photos' side and what to pass), and the embedded set above
// its stored size.
func TestLoadRefusesSizeTheDataCannotGive(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		for _, class := range []string{"a", "b"} {
			writeFile(t, dir, fmt.Sprintf("%s/%d.png", class, i), pngBytes(t, gradient(20, 16, i)))
		}
	}
	cfg := DefaultLoadConfig()
	cfg.Dir, cfg.Size = dir, 16
	if _, _, err := Load(context.Background(), cfg); err != nil {
		t.Fatalf("size 16 of 16 px photos: %v", err)
	}
	cfg.Size = 32
	_, _, err := Load(context.Background(), cfg)
	if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), "shorter side is 16 px") || !strings.Contains(err.Error(), "at most 16") {
		t.Errorf("size 32 of 16 px photos: %v, want an ErrConfig naming the folder, 16 px and the bound", err)
	}
	emb := DefaultLoadConfig()
	emb.Size = EmbeddedSize + 1
	if _, _, err := Load(context.Background(), emb); err == nil || !strings.Contains(err.Error(), "embedded set (stored at 48 px") {
		t.Errorf("embedded at %d px: %v, want a refusal naming the stored size", emb.Size, err)
	}
}

// TestScanMatchesLoad: scanning keeps no pixels but the same items, skips
// and report as loading, and sums that give the loaded set's Normalizer
// bit for bit.
func TestScanMatchesLoad(t *testing.T) {
	dir := makeFolder(t, []string{"daisy", "rose"}, 6)
	writeFile(t, dir, "rose/broken.jpg", []byte("not a photo"))
	ctx := context.Background()
	cfg := DefaultLoadConfig()
	cfg.Dir, cfg.Size = dir, 16
	whole, wrep, err := Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	o, err := OpenOrigin(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	cat, sums, srep, err := ScanOrigin(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cat.Items, whole.Items) || cat.Size != 0 || len(sums) != len(whole.Items) {
		t.Fatalf("scan: %d items (size %d, %d sums), load: %d", len(cat.Items), cat.Size, len(sums), len(whole.Items))
	}
	if len(srep.Skipped) != 1 || !slices.Equal(srep.Skipped, wrep.Skipped) || srep.Bytes != wrep.Bytes {
		t.Fatalf("scan report %+v, load report %+v", srep, wrep)
	}
	idx := []int{0, 2, 3, 7, 10}
	var s ChannelSums
	for _, i := range idx {
		s.Add(sums[i])
	}
	if got, want := s.Normalizer(), ComputeNormalizer(whole, idx); got != want {
		t.Fatalf("normaliser from the scan's sums %+v, from the pixels %+v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Error("Image of a catalogue did not panic")
		}
	}()
	cat.Image(0)
}
