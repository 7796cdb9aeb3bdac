package shard

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Blob is the result of fetching one item: its bytes, or why they could not
// be had (a missing or unreadable file; the item is then skipped).
type Blob struct {
	// Data is the file's bytes.
	Data []byte
	// Err says why Data could not be had; the item is then skipped.
	Err error
}

// Source is where image bytes come from: a folder shared by every process
// (FolderSource), memory (MemSource, the embedded set), or the coordinator
// serving the bytes of a worker's shard. Fetch returns one Blob per item,
// in order; a per-item failure goes in Blob.Err, and a non-nil error means
// the whole call failed (context cancelled, connection lost) and is fatal.
// Implementations must be safe for concurrent use.
type Source interface {
	Fetch(ctx context.Context, items []Item) ([]Blob, error)
}

// FolderSource reads items from files below Dir (Item.Path is relative,
// with forward slashes).
type FolderSource struct {
	Dir string
}

// Fetch reads each item's file.
func (s FolderSource) Fetch(ctx context.Context, items []Item) ([]Blob, error) {
	out := make([]Blob, len(items))
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("fetch %s from %s: %w", it.Path, s.Dir, err)
		}
		p, err := localPath(s.Dir, it.Path)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Data, out[i].Err = os.ReadFile(p)
	}
	return out, nil
}

// localPath joins a relative slash path below dir, refusing paths that
// would leave it (an item list may come from an untrusted manifest).
func localPath(dir, rel string) (string, error) {
	clean := path.Clean(rel)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", fmt.Errorf("path %q leaves the data folder", rel)
	}
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

// MemSource serves items from memory, keyed by Item.Path.
type MemSource map[string][]byte

// Fetch returns the stored bytes of each item (not copies).
func (s MemSource) Fetch(ctx context.Context, items []Item) ([]Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fetch from memory: %w", err)
	}
	out := make([]Blob, len(items))
	for i, it := range items {
		b, ok := s[it.Path]
		if !ok {
			out[i].Err = fmt.Errorf("%s: %w", it.Path, os.ErrNotExist)
		}
		out[i].Data = b
	}
	return out, nil
}
