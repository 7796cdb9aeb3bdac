package shard

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// packFolder packs a fresh folder of classes x perClass images into a
// temporary DirStore with small shards.
func packFolder(t *testing.T, perClass int, shardBytes int64) (src string, dst DirStore, x *Index) {
	t.Helper()
	src = makeFolder(t, []string{"daisy", "rose", "tulip"}, perClass)
	dst = DirStore(t.TempDir())
	cfg := DefaultPackConfig()
	cfg.ShardBytes = shardBytes
	x, rep, err := Pack(context.Background(), src, dst, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != 3*perClass || rep.Shards != len(x.Shards) {
		t.Fatalf("report %+v for %d images in %d shards", rep, 3*perClass, len(x.Shards))
	}
	return src, dst, x
}

// TestPackLoadsAsTheFolder packs a folder into several shards and loads
// it back: the same items, digests and pixels as loading the folder, and
// every member readable with a plain tar reader in WebDataset's layout.
func TestPackLoadsAsTheFolder(t *testing.T) {
	src, dst, x := packFolder(t, 7, 4<<10)
	if len(x.Shards) < 3 {
		t.Fatalf("%d shards of 4 KiB for 21 images: want several", len(x.Shards))
	}
	want, _ := load(t, src, 16)
	got, rep := load(t, string(dst), 16)
	if !slices.Equal(got.Items, want.Items) || !bytes.Equal(got.pix, want.pix) || !slices.Equal(got.Classes, want.Classes) {
		t.Fatalf("packed load differs from the folder's:\n got %v\nwant %v", got.Items[:2], want.Items[:2])
	}
	if rep.Source != string(dst) {
		t.Errorf("report source %q", rep.Source)
	}
	seen := 0
	for _, s := range x.Shards {
		f, err := os.Open(filepath.Join(string(dst), s.Name))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			key, ext, _ := strings.Cut(h.Name, ".")
			if ext != "jpg" && ext != "cls" || len(key) != 9 || h.ModTime.Unix() != 0 {
				t.Errorf("%s: member %q (mtime %v) is not WebDataset's <key>.jpg / <key>.cls", s.Name, h.Name, h.ModTime)
			}
			seen++
		}
		f.Close()
	}
	if seen != 2*len(x.Images) {
		t.Errorf("%d tar members for %d images", seen, len(x.Images))
	}
}

// TestPackIsReproducible packs one folder twice: the same bytes.
func TestPackIsReproducible(t *testing.T) {
	src := makeFolder(t, []string{"a", "b"}, 5)
	var idx [2][]byte
	for k := range idx {
		dst := DirStore(t.TempDir())
		if _, _, err := Pack(context.Background(), src, dst, DefaultPackConfig()); err != nil {
			t.Fatal(err)
		}
		var err error
		if idx[k], err = os.ReadFile(filepath.Join(string(dst), IndexName)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(idx[0], idx[1]) {
		t.Fatal("two packs of one folder differ (their indexes hold the shards' digests)")
	}
}

// TestVerifyPackNamesDamage flips one byte inside an image of a middle
// shard: VerifyPack names that shard, the offset and the image; loading
// skips exactly that image with a reason naming the same, or fails under
// Strict.
func TestVerifyPackNamesDamage(t *testing.T) {
	_, dst, x := packFolder(t, 6, 4<<10)
	rep, err := VerifyPack(context.Background(), dst)
	if err != nil || len(rep.Problems) != 0 || rep.Images != 18 {
		t.Fatalf("intact pack: %+v, %v", rep, err)
	}
	victim := x.Images[len(x.Images)/2]
	shard := filepath.Join(string(dst), x.Shards[victim.Shard].Name)
	b, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	b[victim.Offset+victim.Size/2] ^= 0x40
	if err := os.WriteFile(shard, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = VerifyPack(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range rep.Problems {
		if p.Shard != x.Shards[victim.Shard].Name {
			t.Errorf("problem in the wrong shard: %v", p)
		}
		paths = append(paths, p.Path)
	}
	if len(rep.Problems) != 2 || !slices.Contains(paths, victim.Path) || !slices.Contains(paths, "") {
		t.Fatalf("problems %v: want the image %s and its shard's digest", rep.Problems, victim.Path)
	}
	cfg := DefaultLoadConfig()
	cfg.Dir, cfg.Size = string(dst), 16
	d, lrep, err := Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 17 || len(lrep.Skipped) != 1 || lrep.Skipped[0].Path != victim.Path ||
		!strings.Contains(lrep.Skipped[0].Reason, x.Shards[victim.Shard].Name) {
		t.Fatalf("loaded %d images, skipped %+v: want the damaged one, its shard named", d.Len(), lrep.Skipped)
	}
	cfg.Strict = true
	if _, _, err := Load(context.Background(), cfg); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), victim.Path) {
		t.Fatalf("strict load of a damaged pack: %v", err)
	}
}

// TestVerifyPackFindsTruncationAndStrangers: a shard cut short loses its
// last members (named missing), and a member the index does not know is
// named.
func TestVerifyPackFindsTruncationAndStrangers(t *testing.T) {
	_, dst, x := packFolder(t, 4, 1<<20)
	shard := filepath.Join(string(dst), x.Shards[0].Name)
	b, _ := os.ReadFile(shard)
	last := x.Images[len(x.Images)-1]
	if err := os.WriteFile(shard, b[:last.Offset-tarBlock], 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyPack(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.Problems, func(p PackProblem) bool {
		return p.Path == last.Path && strings.Contains(p.Detail, "missing")
	}) {
		t.Errorf("truncated shard: problems %v lack the last image as missing", rep.Problems)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "stranger.jpg", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte{1})
	tw.Close()
	if err := os.WriteFile(shard, append(b[:len(b)-2*tarBlock], buf.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _ = VerifyPack(context.Background(), dst)
	if !slices.ContainsFunc(rep.Problems, func(p PackProblem) bool { return strings.Contains(p.Detail, `"stranger.jpg" is not in the index`) }) {
		t.Errorf("extra member: problems %v", rep.Problems)
	}
}

// TestPackedSourceJoinsRanges counts range requests: a run of neighbours
// is one request; items out of order or from other shards are not joined.
func TestPackedSourceJoinsRanges(t *testing.T) {
	dir, dst, x := packFolder(t, 5, 1<<20)
	cs := &countingStore{Store: dst}
	src := NewPackedSource(cs, x)
	items := x.Items()
	blobs, err := src.Fetch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	if cs.ranges != 1 {
		t.Errorf("%d range requests for %d neighbouring images of one shard, want 1", cs.ranges, len(items))
	}
	for i, b := range blobs {
		want, err := os.ReadFile(filepath.Join(dir, items[i].Path))
		if err != nil || b.Err != nil || !bytes.Equal(b.Data, want) {
			t.Fatalf("item %d (%s): %d bytes, %v; the file has %d bytes (%v)", i, items[i].Path, len(b.Data), b.Err, len(want), err)
		}
	}
	cs.ranges = 0
	rev := slices.Clone(items)
	slices.Reverse(rev)
	rev = append(rev, Item{Path: "rose/nope.jpg"})
	blobs, err = src.Fetch(context.Background(), rev)
	if err != nil {
		t.Fatal(err)
	}
	if cs.ranges != len(items) || !errors.Is(blobs[len(rev)-1].Err, os.ErrNotExist) {
		t.Errorf("reversed: %d requests for %d images; unknown path: %v", cs.ranges, len(items), blobs[len(rev)-1].Err)
	}
}

// countingStore counts ReadRange calls.
type countingStore struct {
	Store
	ranges int
}

func (c *countingStore) ReadRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	c.ranges++
	return c.Store.ReadRange(ctx, name, off, n)
}

// TestOpenStoreNamesUnknownScheme: a URL with no registered store is
// refused with the URL and the registered schemes named.
func TestOpenStoreNamesUnknownScheme(t *testing.T) {
	_, err := OpenStore(context.Background(), "nope://bucket/x")
	if !errors.Is(err, ErrStore) || !strings.Contains(err.Error(), "nope://bucket/x") {
		t.Fatalf("got %v", err)
	}
	if _, err := OpenOrigin(context.Background(), "nope://bucket/x"); !errors.Is(err, ErrStore) {
		t.Fatalf("origin: %v", err)
	}
}

// TestPackConfigValidate names the field and bound.
func TestPackConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    PackConfig
		want string
	}{
		{PackConfig{ShardBytes: 10, Prefix: "s"}, "PackConfig.ShardBytes = 10, must be in 1024..4294967296"},
		{PackConfig{ShardBytes: 1 << 20, Prefix: "a.b"}, `PackConfig.Prefix = "a.b"`},
		{PackConfig{ShardBytes: 1 << 20, Prefix: ""}, `PackConfig.Prefix = ""`},
	} {
		err := tc.c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if err := DefaultPackConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
