package shard

import (
	"errors"
	"testing"
)

// TestCountImages: the count without decoding is what Load lists (the
// embedded set's 3,480 photos; a folder's images, its notes and hidden
// files left out), and a missing folder is a layout error naming it.
func TestCountImages(t *testing.T) {
	if n, err := CountImages(""); err != nil || n != 3480 {
		t.Errorf("embedded: %d, %v; want 3480", n, err)
	}
	dir := makeFolder(t, []string{"a", "b"}, 3)
	writeFile(t, dir, "a/notes.txt", []byte("x"))
	writeFile(t, dir, "b/.hidden.jpg", []byte("x"))
	d, _ := load(t, dir, 8)
	if n, err := CountImages(dir); err != nil || n != d.Len() || n != 6 {
		t.Errorf("folder: %d, %v; Load has %d, want 6", n, err, d.Len())
	}
	if _, err := CountImages(dir + "/none"); !errors.Is(err, ErrLayout) || !containsStr(err.Error(), dir+"/none") {
		t.Errorf("missing folder: %v, want ErrLayout naming it", err)
	}
}
