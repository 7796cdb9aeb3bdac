package job

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/whorl-ml/whorl/shard"
	"github.com/whorl-ml/whorl/shard/shardtest"
)

// TestOpenDataMatchesLoadData: the same job from a class folder and from
// its packed copy, opened without its pixels, has LoadData's items, split,
// manifest and normaliser bit for bit, and its images read through the
// stream are the whole load's; a small cache still serves every request.
func TestOpenDataMatchesLoadData(t *testing.T) {
	dir := shardtest.EmbeddedFolder(t, 3, 10)
	packed := t.TempDir()
	pc := shard.DefaultPackConfig()
	pc.ShardBytes = 16 << 10
	ctx := context.Background()
	if _, _, err := shard.Pack(ctx, dir, shard.DirStore(packed), pc); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Data.Dir, c.Data.ImageSize = dir, 16
	whole, err := LoadData(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range []string{dir, packed} {
		c.Data.Dir = loc
		d, err := OpenData(ctx, c, StreamConfig{CacheBytes: 1, ReadAhead: 1})
		if err != nil {
			t.Fatal(err)
		}
		if d.ManifestDigest != whole.ManifestDigest || d.Norm != whole.Norm || !slices.Equal(d.Set.Items, whole.Set.Items) ||
			!slices.Equal(d.LabeledTrain, whole.LabeledTrain) || !slices.Equal(d.Split.Test, whole.Split.Test) {
			t.Fatalf("%s: opened data differs from the whole load (norm %+v vs %+v)", loc, d.Norm, whole.Norm)
		}
		if d.Stream == nil || d.Set.Size != 0 {
			t.Fatalf("%s: opened data holds pixels (size %d)", loc, d.Set.Size)
		}
		ids := d.Split.Test
		d.Prefetch([][]int{d.Split.Labeled})
		for _, req := range [][]int{ids, d.Split.Labeled, ids} {
			set, at, err := d.Images(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for k, id := range req {
				if !bytes.Equal(set.Image(at[k]), whole.Set.Image(id)) || set.Items[at[k]] != whole.Set.Items[id] {
					t.Fatalf("%s: image %d (%s) differs from the whole load's", loc, id, whole.Set.Items[id].Path)
				}
			}
		}
		if _, _, err := d.Images(ctx, []int{d.Set.Len()}); err == nil {
			t.Errorf("%s: an id past the images was served", loc)
		}
	}
	if _, _, err := whole.Images(ctx, []int{-1}); err == nil {
		t.Error("whole data served id -1")
	}
}
