package shard

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/whorl-ml/whorl/internal/atomicfile"
)

// Store holds a packed dataset's objects (its index and shards): a folder
// (DirStore), or an object store opened by URL through the opener
// registered for its scheme (package bucket registers file://, s3:// and
// gs://). Implementations must be safe for concurrent use; their errors
// name the URL and the object.
type Store interface {
	// ReadRange returns n bytes of object name from offset off (n < 0:
	// to the end). Fewer than n bytes is an error.
	ReadRange(ctx context.Context, name string, off, n int64) ([]byte, error)
	// Open streams the whole object.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Create writes an object: it exists, whole, only once Close returned
	// nil; when ctx ends before Close, Close discards it.
	Create(ctx context.Context, name string) (io.WriteCloser, error)
	// URL names the store in messages.
	URL() string
	// Close releases the store.
	Close() error
}

// StoreOpener opens the store a URL names.
type StoreOpener func(ctx context.Context, url string) (Store, error)

var (
	storesMu sync.RWMutex
	stores   = map[string]StoreOpener{}
)

// RegisterStore makes OpenStore open URLs of scheme ("s3") with open, as
// image.RegisterFormat does for decoders. It panics when the scheme is
// registered twice.
func RegisterStore(scheme string, open StoreOpener) {
	storesMu.Lock()
	defer storesMu.Unlock()
	if _, dup := stores[scheme]; dup {
		panic("shard: RegisterStore called twice for scheme " + scheme)
	}
	stores[scheme] = open
}

// IsURL reports whether s is a URL ("scheme://...") rather than a path.
func IsURL(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	return ok && scheme != "" && !strings.ContainsAny(scheme, `/\.`)
}

// OpenStore opens the store at loc: a URL of a registered scheme, or a
// folder.
func OpenStore(ctx context.Context, loc string) (Store, error) {
	if !IsURL(loc) {
		return DirStore(loc), nil
	}
	scheme, _, _ := strings.Cut(loc, "://")
	storesMu.RLock()
	open := stores[scheme]
	storesMu.RUnlock()
	if open == nil {
		return nil, errorf(ErrStore, "%s: no store for scheme %q in this program (registered: %s)", loc, scheme, registered())
	}
	return open(ctx, loc)
}

// registered lists the registered schemes.
func registered() string {
	storesMu.RLock()
	defer storesMu.RUnlock()
	var s []string
	for k := range stores {
		s = append(s, k+"://")
	}
	sort.Strings(s)
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// DirStore is a Store over a local folder, without any URL layer.
type DirStore string

// path is name's file, refusing names that leave the folder.
func (d DirStore) path(name string) (string, error) {
	if !validName(name) {
		return "", errorf(ErrStore, "%s: object name %q is not a plain file name", d, name)
	}
	return filepath.Join(string(d), name), nil
}

// ReadRange reads n bytes of the file from off.
func (d DirStore) ReadRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	if n < 0 {
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		n = max(st.Size()-off, 0)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read %s bytes [%d, %d): %w", p, off, off+n, err)
	}
	return b, ctx.Err()
}

// Open opens the file.
func (d DirStore) Open(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// Create writes the file atomically: a temporary file renamed on Close, or
// removed when ctx ended first.
func (d DirStore) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", d, err)
	}
	f, err := os.CreateTemp(string(d), "."+name+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", p, err)
	}
	return &dirWriter{ctx: ctx, f: f, path: p}, nil
}

// dirWriter is a file written beside its final name and renamed there on
// Close, so that no reader sees half of it.
type dirWriter struct {
	ctx  context.Context
	f    *os.File
	path string
}

func (w *dirWriter) Write(b []byte) (int, error) { return w.f.Write(b) }

// Close syncs and renames the file into place.
func (w *dirWriter) Close() error {
	tmp := w.f.Name()
	err := w.ctx.Err()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, w.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(w.path))
}

// URL is the folder.
func (d DirStore) URL() string { return string(d) }

// Close does nothing.
func (d DirStore) Close() error { return nil }
