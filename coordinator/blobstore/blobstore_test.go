package blobstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
)

func TestBlobStore(t *testing.T) {
	b, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d1, err := b.Put([]byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.ReadAll(d1); err != nil || !bytes.Equal(got, []byte("one")) {
		t.Fatalf("read back: %q %v", got, err)
	}
	w, _ := b.Create()
	w.Write([]byte("two"))
	if _, err := w.Commit(d1, 3); !errors.Is(err, client.ErrBadCheckpoint) {
		t.Errorf("commit with a wrong digest: %v", err)
	}
	w, _ = b.Create()
	w.Write([]byte("two"))
	if _, err := w.Commit("", 4); !errors.Is(err, client.ErrBadCheckpoint) {
		t.Errorf("commit with a wrong size: %v", err)
	}
	if _, _, err := b.Open("../etc/passwd"); !errors.Is(err, client.ErrBlobNotFound) {
		t.Errorf("open of a non-digest: %v", err)
	}
	d2, _ := b.Put([]byte("two"))
	if err := b.Prune([]string{d1}, time.Hour); err != nil || !b.Has(d2) {
		t.Fatalf("prune within the grace period removed %s: %v", d2, err)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(b.dir, d2), old, old)
	if err := b.Prune([]string{d1}, time.Hour); err != nil || b.Has(d2) || !b.Has(d1) {
		t.Fatalf("prune: has d1 %v d2 %v, err %v", b.Has(d1), b.Has(d2), err)
	}
	entries, _ := os.ReadDir(b.dir)
	if len(entries) != 1 {
		t.Errorf("blob dir holds %d entries after failed writes and a prune, want 1", len(entries))
	}
}
