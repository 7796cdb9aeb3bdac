package experiment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whorl-ml/whorl/job"
	"github.com/whorl-ml/whorl/shard"
)

// TestPrepareKeepsTheManifest: a resumed Prepare keeps an intact manifest,
// refuses a truncated one naming its path, and refuses one of other data.
func TestPrepareKeepsTheManifest(t *testing.T) {
	dir, out := writeImageFolder(t, 3, 8), t.TempDir()
	c := tinyConfig(dir)
	ctx := context.Background()
	if _, err := (&Runner{OutDir: out}).Prepare(ctx, c.JSON()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, FileManifest)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Runner{OutDir: out}).Prepare(ctx, c.JSON()); err != nil {
		t.Fatalf("resume with an intact manifest: %v", err)
	}
	tests := []struct {
		name    string
		content []byte
		errHas  string
	}{
		{"truncated", good[:len(good)/2], "read manifest " + path},
		{"empty", nil, "read manifest " + path},
		{"other data", []byte(strings.Replace(string(good), "class0/00.png", "class0/99.png", 1)), "differ from the ones this run began with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := (&Runner{OutDir: out}).Prepare(ctx, c.JSON())
			if !errors.Is(err, shard.ErrManifest) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("Prepare = %v, want ErrManifest naming %q", err, tt.errHas)
			}
			if b, _ := os.ReadFile(path); string(b) != string(tt.content) {
				t.Error("Prepare overwrote the damaged manifest (the evidence)")
			}
		})
	}
}

// TestTestPerClassSplit checks split.test_per_class reaches the split: the
// same number of test images of every class, whatever the fraction says.
func TestTestPerClassSplit(t *testing.T) {
	c := tinyConfig(writeImageFolder(t, 3, 16))
	c.Split.TestPerClass = 5
	d, err := job.LoadData(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	per := map[int]int{}
	for _, i := range d.Split.Test {
		per[d.Set.Items[i].Class]++
	}
	if len(d.Split.Test) != 15 || per[0] != 5 || per[1] != 5 || per[2] != 5 {
		t.Errorf("test split %d images, per class %v; want 5 of each of 3 classes", len(d.Split.Test), per)
	}
}

// TestPrepareNextJobInSharedFolder: a coordinator's runner (Jobs) starts
// the manifest over for a job of another configuration (another split), keeps
// and checks it for the same job prepared again (a new leader), while
// whorl run's runner refuses the other split in the same folder.
func TestPrepareNextJobInSharedFolder(t *testing.T) {
	dir := writeImageFolder(t, 3, 8)
	first, next := tinyConfig(dir), tinyConfig(dir)
	next.Seed++ // another split
	ctx := context.Background()
	out := t.TempDir()
	coord := &Runner{OutDir: out, Jobs: true}
	for _, c := range []job.Config{first, next, next} {
		if _, err := coord.Prepare(ctx, c.JSON()); err != nil {
			t.Fatalf("coordinator's runner, job of seed %d: %v", c.Seed, err)
		}
	}
	path := filepath.Join(out, FileManifest)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(good), "class0/00.png", "class0/99.png", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := coord.Prepare(ctx, next.JSON()); !errors.Is(err, shard.ErrManifest) {
		t.Fatalf("the same job prepared again over another manifest: %v, want ErrManifest", err)
	}
	run := t.TempDir()
	if _, err := (&Runner{OutDir: run}).Prepare(ctx, first.JSON()); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Runner{OutDir: run}).Prepare(ctx, next.JSON()); !errors.Is(err, shard.ErrManifest) {
		t.Fatalf("whorl run's runner, another split in the same folder: %v, want ErrManifest", err)
	}
}
