package shard

import (
	"context"
	"strings"
	"testing"
)

// TestEmbeddedSet loads the embedded set: 3,480 CC BY photos in 5 classes,
// each credited in the shipped license text.
func TestEmbeddedSet(t *testing.T) {
	d, rep := load(t, "", 16)
	if d.Len() != 3480 || len(d.Classes) != 5 || len(rep.Skipped) != 0 || rep.Source != "embedded" {
		t.Fatalf("embedded: %d images, classes %v, skipped %v", d.Len(), d.Classes, rep.Skipped)
	}
	want := map[string]int{"daisy": 610, "dandelion": 888, "rose": 549, "sunflower": 671, "tulip": 762}
	for c, n := range want {
		if rep.ClassCounts()[c] != n {
			t.Errorf("class %s: %d images, want %d", c, rep.ClassCounts()[c], n)
		}
	}
	lic := EmbeddedLicense()
	if !strings.Contains(lic, "creativecommons.org/licenses/by/2.0") {
		t.Error("license text lacks the CC BY 2.0 notice")
	}
	for _, it := range d.Items {
		name := it.Path[strings.Index(it.Path, "/")+1:]
		if !strings.Contains(lic, "/"+name+" CC-BY") {
			t.Fatalf("%s is not credited in the license text", it.Path)
		}
	}
	if len(embeddedZip)+len(lic) >= 8<<20 {
		t.Errorf("embedded set is %d bytes, over 8 MiB", len(embeddedZip)+len(lic))
	}
	if _, _, err := Load(context.Background(), LoadConfig{Size: 8, MaxPixels: 10, Strict: true}); err == nil {
		t.Error("strict load with a 10-pixel limit should fail on the embedded set")
	}
}
