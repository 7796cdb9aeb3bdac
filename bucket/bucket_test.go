package bucket

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/shard"
)

// TestGocloudURL pins the translation of whorl's URLs to gocloud's.
func TestGocloudURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		create   bool
	}{
		{"file:///data/packed", "file:///data/packed?metadata=skip&no_tmp_dir=true", false},
		{"file:///data/packed", "file:///data/packed?create_dir=true&metadata=skip&no_tmp_dir=true", true},
		{"s3://flowers/packed/v1", "s3://flowers?prefix=packed%2Fv1%2F", false},
		{"s3://flowers?endpoint=http://127.0.0.1:8333&use_path_style=true", "s3://flowers?endpoint=http%3A%2F%2F127.0.0.1%3A8333&use_path_style=true", false},
		{"gs://b/p/", "gs://b?prefix=p%2F", false},
	} {
		got, err := gocloudURL(tc.in, tc.create)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"s3:///x", "file://host/x", "ftp://x/y", "gs://"} {
		if _, err := gocloudURL(bad, false); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// testFolder writes a class folder of two tiny classes of PNG-named JPEG
// bytes copied from shard's test photos.
func testFolder(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../shard/testdata/video-001.jpeg")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range []string{"a/1.jpg", "a/2.jpg", "b/1.jpg", "b/2.jpg", "b/3.jpg"} {
		b := append([]byte(nil), src...)
		b = append(b, p...) // distinct bytes, still a valid JPEG (data after EOI is ignored)
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestFileURLPacksAndLoads packs through a file:// bucket (a folder
// created on demand, no side files) and loads the same images by URL
// through shard's registry as from the folder.
func TestFileURLPacksAndLoads(t *testing.T) {
	ctx := context.Background()
	src := testFolder(t)
	out := filepath.Join(t.TempDir(), "packed")
	u := "file://" + out
	b, err := Open(ctx, u, Options{Create: true, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := shard.DefaultPackConfig()
	cfg.ShardBytes = 4 << 10
	x, _, err := shard.Pack(ctx, src, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	names, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(names) != len(x.Shards)+1 {
		t.Errorf("folder holds %v: want %d shards and the index, nothing else", names, len(x.Shards))
	}
	lc := shard.DefaultLoadConfig()
	lc.Size = 16
	lc.Dir = src
	want, _, err := shard.Load(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	lc.Dir = u
	got, rep, err := shard.Load(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != want.Len() || rep.Source != u {
		t.Fatalf("by URL: %d images from %q, want %d", got.Len(), rep.Source, want.Len())
	}
	for i := range want.Len() {
		if got.Items[i] != want.Items[i] || string(got.Image(i)) != string(want.Image(i)) {
			t.Fatalf("image %d differs: %+v vs %+v", i, got.Items[i], want.Items[i])
		}
	}
	st, err := shard.OpenStore(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	vr, err := shard.VerifyPack(ctx, st)
	if err != nil || len(vr.Problems) > 0 {
		t.Fatalf("verify: %+v %v", vr, err)
	}
}

// TestMissingIsNotRetried: a missing folder is refused at once, naming
// the URL; a missing object is not retried.
func TestMissingIsNotRetried(t *testing.T) {
	ctx := context.Background()
	u := "file://" + filepath.Join(t.TempDir(), "nope")
	if _, err := Open(ctx, u, DefaultOptions()); !errors.Is(err, shard.ErrStore) || !strings.Contains(err.Error(), u) {
		t.Fatalf("missing folder: %v", err)
	}
	dir := t.TempDir()
	b, err := Open(ctx, "file://"+dir, Options{Attempts: 5, Backoff: time.Second, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.ReadRange(ctx, "shard-000000.tar", 0, 10)
	if !errors.Is(err, shard.ErrStore) || !strings.Contains(err.Error(), "(1 attempt)") || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("missing object after %v: %v", time.Since(start), err)
	}
}

// TestOptionsValidate names the field and its bound.
func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	o.Attempts = 0
	if err := o.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "bucket.Options.Attempts = 0, must be in 1..100") {
		t.Fatal(err)
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
}
