package shard

import (
	"context"
	"errors"
	"os"
	"testing"
)

// TestSources checks both Source implementations: bytes in order, per-item
// failures in Blob.Err, paths that would leave the folder refused, and a
// cancelled context failing the whole call.
func TestSources(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a/x.jpg", []byte("xx"))
	writeFile(t, dir, "b/y.png", []byte("yyy"))
	items := []Item{{Path: "b/y.png"}, {Path: "a/missing.jpg"}, {Path: "../etc/passwd"}, {Path: "a/x.jpg"}, {Path: "/a/x.jpg"}}
	mem := MemSource{"a/x.jpg": []byte("xx"), "b/y.png": []byte("yyy")}
	for name, src := range map[string]Source{"folder": FolderSource{Dir: dir}, "memory": mem} {
		t.Run(name, func(t *testing.T) {
			blobs, err := src.Fetch(context.Background(), items)
			must(t, err)
			if string(blobs[0].Data) != "yyy" || string(blobs[3].Data) != "xx" || blobs[0].Err != nil || blobs[3].Err != nil {
				t.Fatalf("blobs %+v", blobs)
			}
			for _, i := range []int{1, 2, 4} {
				if blobs[i].Err == nil || blobs[i].Data != nil {
					t.Errorf("item %s: %+v, want an error", items[i].Path, blobs[i])
				}
			}
			if !errors.Is(blobs[1].Err, os.ErrNotExist) {
				t.Errorf("missing file: %v", blobs[1].Err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := src.Fetch(ctx, items); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled fetch: %v", err)
			}
		})
	}
}
