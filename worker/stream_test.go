package worker

import (
	"context"
	"strings"
	"testing"

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
	if _, ok := src.(*shard.Stream); err != nil || !ok {
		t.Fatalf("packed, same manifest: %T %v, want a *shard.Stream", src, err)
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
