package bucket

import (
	"bytes"
	"context"
	"crypto/md5"
	"os"
	"path/filepath"
	"testing"
)

// TestPut writes objects by file and by bytes into a file:// bucket and
// reads them back; a missing object is NotFound, and a body whose MD5 is
// not the one announced never appears.
func TestPut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(ctx, "file://"+dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	src := filepath.Join(t.TempDir(), "weights.bin")
	data := bytes.Repeat([]byte("whorl"), 100_000)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.PutFile(ctx, "job-1/weights.bin", src); err != nil {
		t.Fatal(err)
	}
	if err := b.PutBytes(ctx, "job-1/SUMS", []byte("sums\n")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"job-1/weights.bin": data, "job-1/SUMS": []byte("sums\n")} {
		got, err := b.ReadRange(ctx, name, 0, -1)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes (%v), want %d", name, len(got), err, len(want))
		}
	}
	if _, err := b.ReadRange(ctx, "job-1/missing", 0, -1); !IsNotFound(err) {
		t.Fatalf("missing object: %v, want NotFound", err)
	}
	wrong := md5.Sum([]byte("something else"))
	if err := b.write(ctx, "job-1/damaged", bytes.NewReader(data), wrong[:]); err == nil {
		t.Fatal("a body whose MD5 differs from the announced one was accepted")
	}
	if _, err := b.ReadRange(ctx, "job-1/damaged", 0, -1); !IsNotFound(err) {
		t.Fatalf("the damaged object: %v, want it absent", err)
	}
	if err := b.PutFile(ctx, "job-1/x", filepath.Join(dir, "no-such-file")); err == nil {
		t.Fatal("PutFile of a missing file succeeded")
	}
}
