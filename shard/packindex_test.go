package shard

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// validIndexJSON is a small well-formed index.
const validIndexJSON = `{"format":"whorl-packed/1","classes":["a","b"],
"shards":[{"name":"s-000000.tar","bytes":4096,"sha256":"` + zeros + `"}],
"images":[{"key":"000000000","ext":".jpg","path":"a/x.jpg","class":0,"shard":0,"offset":512,"size":100,"sha256":"` + zeros + `"},
{"key":"000000001","ext":".png","path":"b/y.png","class":1,"shard":0,"offset":2048,"size":100,"sha256":"` + zeros + `"}]}`

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// TestParseIndexRefuses names each malformed entry.
func TestParseIndexRefuses(t *testing.T) {
	if _, err := ParseIndex([]byte(validIndexJSON)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`whorl-packed/1`, `whorl-packed/2`, `format "whorl-packed/2"`},
		{`"classes":["a","b"]`, `"classes":["b","a"]`, "out of order"},
		{`"offset":2048`, `"offset":512`, "not after the previous member"},
		{`"offset":2048`, `"offset":2049`, "not after the previous member"},
		{`"size":100,"sha256":"` + zeros + `"}]}`, `"size":4000,"sha256":"` + zeros + `"}]}`, "inside shard 0"},
		{`"path":"b/y.png","class":1`, `"path":"a/y.png","class":1`, "not the path's folder"},
		{`"path":"b/y.png"`, `"path":"../y.png"`, "path not class/file"},
		{`"key":"000000001"`, `"key":"000000000"`, "repeated"},
		{`"key":"000000001"`, `"key":"0.1"`, "holding '.'"},
		{`"ext":".png"`, `"ext":".PNG"`, "lower case"},
		{`"shard":0,"offset":2048`, `"shard":3,"offset":2048`, "shard 3 of 1"},
		{`"name":"s-000000.tar"`, `"name":"../s.tar"`, "bad name"},
		{`"format"`, `"extra":1,"format"`, "unknown field"},
	} {
		_, err := ParseIndex([]byte(strings.Replace(validIndexJSON, tc.from, tc.to, 1)))
		if !errors.Is(err, ErrPack) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// FuzzParseIndex: an index is untrusted input (a bucket anyone may write).
// Nothing panics, and an accepted index encodes and parses to itself.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(validIndexJSON))
	f.Add([]byte(`{"format":"whorl-packed/1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ParseIndex(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		y, err := ParseIndex(again)
		if err != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("re-encoded index: %v", err)
		}
	})
}

// TestReadIndexNamesTheStore: a folder with a broken index is refused
// naming the folder and the index.
func TestReadIndexNamesTheStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, IndexName), []byte(`{"format":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenOrigin(t.Context(), dir)
	if !errors.Is(err, ErrPack) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), IndexName) {
		t.Fatalf("got %v", err)
	}
}
