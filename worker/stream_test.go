package worker

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/shard"
	"github.com/whorl-ml/whorl/shard/shardtest"
)

// packedJob packs 3 classes x 8 embedded photos into a folder and returns
// a job on the class folder and the same job on the packed one.
func packedJob(t testing.TB) (folder, packed job.Config) {
	return packedJobOf(t, 3, 8)
}

// packedJobOf is packedJob with classes x perClass photos.
func packedJobOf(t testing.TB, classes, perClass int) (folder, packed job.Config) {
	t.Helper()
	dir := shardtest.EmbeddedFolder(t, classes, perClass)
	out := t.TempDir()
	cfg := shard.DefaultPackConfig()
	cfg.ShardBytes = 8 << 10
	if _, _, err := shard.Pack(context.Background(), dir, shard.DirStore(out), cfg); err != nil {
		t.Fatal(err)
	}
	folder = job.DefaultConfig()
	folder.Data.Dir, folder.Data.ImageSize = dir, 16
	packed = folder
	packed.Data.Dir = out
	return folder, packed
}

// TestStreamSourceServesTheLoadedPixels: a streamed step's images are the
// whole load's, byte for byte; the next steps are read ahead (no fetch
// when they come); the cache never holds more than its budget.
func TestStreamSourceServesTheLoadedPixels(t *testing.T) {
	fc, pc := packedJob(t)
	ctx := context.Background()
	whole, err := job.LoadData(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := job.OpenCatalogue(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Origin.Close()
	if cat.Data.ManifestDigest != whole.ManifestDigest {
		t.Fatalf("catalogue manifest %s, the whole load's %s", cat.Data.ManifestDigest, whole.ManifestDigest)
	}
	per := int64(16 * 16 * 3)
	s := newStreamSource(cat.Data.Set.Classes, cat.Data.Set.Items, cat.Data.Source, 16, 10*per, 1, 2)
	steps := [][]int{{0, 5, 9}, {1, 2, 20}, {3, 4, 23}}
	for k, ids := range steps {
		s.Prefetch(steps[k+1:])
		before := s.fetched()
		d, idx, err := s.images(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.fetched() - before; k > 0 && got != 0 {
			t.Errorf("step %d fetched %d images: the read-ahead should have", k, got)
		}
		for j, id := range ids {
			if !bytes.Equal(d.Image(idx[j]), whole.Set.Image(id)) || d.Items[idx[j]] != whole.Set.Items[id] {
				t.Fatalf("step %d image %d (%s) differs from the whole load's", k, id, whole.Set.Items[id].Path)
			}
		}
		waitFor(t, 10*time.Second, "read-ahead done", func() bool { return !s.reading() })
		if b := s.cacheBytes(); b > 10*per {
			t.Fatalf("cache holds %d bytes, budget %d", b, 10*per)
		}
	}
	if _, _, err := s.images(ctx, []int{len(whole.Set.Items)}); err == nil {
		t.Error("an id past the catalogue was accepted")
	}
}

// TestFactoryStreamsOnlyWhatItCanNumber: a packed dataset whose catalogue
// has the job's manifest is streamed; with another manifest (the
// coordinator left an image out) the worker loads it whole and checks it;
// a class folder is loaded whole.
func TestFactoryStreamsOnlyWhatItCanNumber(t *testing.T) {
	fc, pc := packedJob(t)
	ctx := context.Background()
	whole, err := job.LoadData(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	f := &netFactory{mode: DataLocal, cacheBytes: DefaultImageCache, ahead: 1, log: testLogger("w")}
	src, err := f.source(ctx, pc, whole.ManifestDigest)
	if _, ok := src.(*streamSource); err != nil || !ok {
		t.Fatalf("packed, same manifest: %T %v, want a streamSource", src, err)
	}
	f = &netFactory{mode: DataLocal, cacheBytes: DefaultImageCache, ahead: 1, log: testLogger("w")}
	if _, err := f.source(ctx, pc, strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Fatalf("packed, other manifest: %v, want the whole load's manifest error", err)
	}
	src, err = f.source(ctx, fc, whole.ManifestDigest)
	if _, ok := src.(localSource); err != nil || !ok {
		t.Fatalf("class folder: %T %v, want a localSource", src, err)
	}
}
