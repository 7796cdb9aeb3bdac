package shard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxGap is the most unwanted bytes PackedSource reads to join two images
// of one shard into one range request.
const maxGap = 64 << 10

// PackedSource serves the images of a packed dataset from its store, by
// Item.Path: each run of neighbouring images of one shard in a Fetch is one
// range request, and every image's bytes are checked against the index's
// digest.
type PackedSource struct {
	store  Store
	index  *Index
	byPath map[string]int
}

// NewPackedSource serves index's images from store.
func NewPackedSource(store Store, index *Index) *PackedSource {
	by := make(map[string]int, len(index.Images))
	for i, im := range index.Images {
		by[im.Path] = i
	}
	return &PackedSource{store: store, index: index, byPath: by}
}

// ReadIndex reads and checks the index of the packed dataset in store.
func ReadIndex(ctx context.Context, store Store) (*Index, error) {
	r, err := store.Open(ctx, IndexName)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s of %s: %w", ErrStore, IndexName, store.URL(), err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s of %s: %w", ErrStore, IndexName, store.URL(), err)
	}
	if len(b) > maxIndexBytes {
		return nil, errorf(ErrPack, "%s of %s is larger than %d bytes", IndexName, store.URL(), maxIndexBytes)
	}
	x, err := ParseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", IndexName, store.URL(), err)
	}
	return x, nil
}

// Fetch reads the items' bytes. An item not in the index, or whose bytes
// do not match their digest, gets a Blob.Err naming the shard and offset;
// a store that cannot be read fails the call.
func (s *PackedSource) Fetch(ctx context.Context, items []Item) ([]Blob, error) {
	out := make([]Blob, len(items))
	for a := 0; a < len(items); {
		i, ok := s.byPath[items[a].Path]
		if !ok {
			out[a].Err = fmt.Errorf("%s is not in %s of %s: %w", items[a].Path, IndexName, s.store.URL(), os.ErrNotExist)
			a++
			continue
		}
		b := a + 1 // the run [a, b) is one range of shard im.Shard
		for b < len(items) && s.joins(i, b-a, items[b]) {
			b++
		}
		if err := s.fetchRun(ctx, i, items[a:b], out[a:b]); err != nil {
			return nil, err
		}
		a = b
	}
	return out, nil
}

// joins reports whether item continues the run of k images starting at
// index image i: the next image of the same shard, at most maxGap further.
func (s *PackedSource) joins(i, k int, item Item) bool {
	j, ok := s.byPath[item.Path]
	if !ok || j != i+k {
		return false
	}
	prev, next := s.index.Images[j-1], s.index.Images[j]
	return next.Shard == prev.Shard && next.Offset-(prev.Offset+prev.Size) <= maxGap
}

// fetchRun reads the images i, i+1, ... of one shard with one request and
// checks each against its digest.
func (s *PackedSource) fetchRun(ctx context.Context, i int, items []Item, out []Blob) error {
	first, last := s.index.Images[i], s.index.Images[i+len(items)-1]
	shard := s.index.Shards[first.Shard].Name
	b, err := s.store.ReadRange(ctx, shard, first.Offset, last.Offset+last.Size-first.Offset)
	if err != nil && !errors.Is(err, ErrStore) { // a store's own errors name it already
		err = fmt.Errorf("%w: %s: %w", ErrStore, s.store.URL(), err)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", first.Path, err)
	}
	for k := range items {
		im := s.index.Images[i+k]
		data := b[im.Offset-first.Offset : im.Offset-first.Offset+im.Size : im.Offset-first.Offset+im.Size]
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != im.SHA256 {
			out[k].Err = errorf(ErrPack, "%s (key %s) at %s offset %d in %s: sha256 %x, the index says %s",
				im.Path, im.Key, shard, im.Offset, s.store.URL(), sum, im.SHA256)
			continue
		}
		out[k].Data = data
	}
	return nil
}
