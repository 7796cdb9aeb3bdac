package shard

import (
	"bytes"
	"context"
	"slices"
	"testing"
)

// TestPackEmbeddedLoadsAsTheEmbeddedSet packs the embedded set into
// several shards and loads it back: the same photos, classes, order and
// pixels as `--data ""`, so a job reading the packed set splits and
// trains on exactly what it would have read from the binary; packing
// again gives the same index.
func TestPackEmbeddedLoadsAsTheEmbeddedSet(t *testing.T) {
	dst := DirStore(t.TempDir())
	cfg := DefaultPackConfig()
	cfg.ShardBytes = 2 << 20
	x, rep, err := PackEmbedded(context.Background(), dst, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != 3480 || rep.Shards != len(x.Shards) || rep.Shards < 3 || len(rep.Skipped) != 0 {
		t.Fatalf("report %+v, index of %d shards: want 3480 photos in several shards", rep, len(x.Shards))
	}
	want, _ := load(t, "", 8)
	got, _ := load(t, string(dst), 8)
	if !slices.Equal(got.Items, want.Items) || !slices.Equal(got.Classes, want.Classes) || !bytes.Equal(got.pix, want.pix) {
		t.Fatalf("the packed embedded set loads differently:\n got %v %v\nwant %v %v", got.Classes, got.Items[:2], want.Classes, want.Items[:2])
	}
	again, _, err := PackEmbedded(context.Background(), DirStore(t.TempDir()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Images, x.Images) || !slices.Equal(again.Shards, x.Shards) {
		t.Error("packing the embedded set twice gave different indexes")
	}
	if _, _, err := PackEmbedded(context.Background(), dst, PackConfig{ShardBytes: 1, Prefix: "shard"}); err == nil {
		t.Error("PackEmbedded took a 1-byte shard size")
	}
}
