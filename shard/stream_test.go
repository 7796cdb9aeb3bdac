package shard

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestStreamServesTheLoadedPixels: a streamed request's images are the
// whole load's, byte for byte; the next requests are read ahead (no fetch
// when they come); the cache never holds more than its budget; an id past
// the items is refused.
func TestStreamServesTheLoadedPixels(t *testing.T) {
	src, dst, _ := packFolder(t, 8, 8<<10)
	ctx := context.Background()
	whole, _ := load(t, src, 16)
	o, err := OpenOrigin(ctx, string(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	per := int64(16 * 16 * 3)
	s := NewStream(StreamConfig{Classes: o.Classes, Items: o.Items, Source: o.Source, Size: 16, CacheBytes: 10 * per, ReadAhead: 1, Threads: 2})
	reqs := [][]int{{0, 5, 9}, {1, 2, 20}, {3, 4, 23}, {3, 3, 0}}
	for k, ids := range reqs {
		s.Prefetch(reqs[k+1:])
		before := s.Fetched()
		d, idx, err := s.Images(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Fetched() - before; k > 0 && k < 3 && got != 0 {
			t.Errorf("request %d fetched %d images: the read-ahead should have", k, got)
		}
		for j, id := range ids {
			if !bytes.Equal(d.Image(idx[j]), whole.Image(id)) || d.Items[idx[j]] != whole.Items[id] {
				t.Fatalf("request %d image %d (%s) differs from the whole load's", k, id, whole.Items[id].Path)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for s.Reading() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if b := s.CachedBytes(); b > 10*per {
			t.Fatalf("cache holds %d bytes, budget %d", b, 10*per)
		}
	}
	if _, _, err := s.Images(ctx, []int{len(whole.Items)}); err == nil {
		t.Error("an id past the items was accepted")
	}
}

// TestStreamCacheFloor: a budget smaller than a request still serves it
// (the cache grows to the request, the requests read ahead and one more).
func TestStreamCacheFloor(t *testing.T) {
	_, dst, _ := packFolder(t, 8, 8<<10)
	ctx := context.Background()
	o, err := OpenOrigin(ctx, string(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	s := NewStream(StreamConfig{Classes: o.Classes, Items: o.Items, Source: o.Source, Size: 16, CacheBytes: 1, ReadAhead: 2})
	ids := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	s.Prefetch([][]int{{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, {20, 21, 22, 23, 0, 1, 2, 3, 4, 5}})
	if _, _, err := s.Images(ctx, ids); err != nil {
		t.Fatalf("a request above the budget: %v", err)
	}
}

// TestStreamNamesABadImage: bytes that do not decode fail the request
// naming the image.
func TestStreamNamesABadImage(t *testing.T) {
	items := []Item{{Path: "rose/a.jpg"}, {Path: "rose/b.jpg"}}
	s := NewStream(StreamConfig{Classes: []string{"rose"}, Items: items, Source: mapSource{"rose/a.jpg": []byte("not a photo"), "rose/b.jpg": nil}, Size: 8})
	for id, want := range []string{"rose/a.jpg", "rose/b.jpg): missing"} {
		if _, _, err := s.Images(context.Background(), []int{id}); err == nil || !containsStr(err.Error(), want) {
			t.Errorf("image %d: err = %v, want %q named", id, err, want)
		}
	}
}

// mapSource serves bytes by path; a nil entry is a missing file.
type mapSource map[string][]byte

func (m mapSource) Fetch(_ context.Context, items []Item) ([]Blob, error) {
	out := make([]Blob, len(items))
	for k, it := range items {
		if b := m[it.Path]; b != nil {
			out[k].Data = b
		} else {
			out[k].Err = errors.New("missing")
		}
	}
	return out, nil
}
