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
