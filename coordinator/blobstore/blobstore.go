package blobstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/whorl-ml/whorl/coordinator/client"
	"github.com/whorl-ml/whorl/internal/atomicfile"
)

// Store keeps content-addressed blobs (checkpoints) in a directory:
// <dir>/<sha256 hex>. A blob becomes visible only after its bytes are
// written, synced and verified, by an atomic rename (and a sync of the
// directory). Open verifies a blob's bytes against its name before use (once
// per file version): a damaged blob is moved aside as <digest>.damaged and
// reported as not found, so a peer's intact copy replaces it.
type Store struct {
	dir string

	mu       sync.Mutex
	verified map[string]blobStamp // digest -> the file version that hashed right
}

// ErrStore marks a failure of this node's disk to take a blob (no space,
// I/O error), as opposed to a bad upload: the coordinator records it for
// JobStatus.
var ErrStore = errors.New("cannot store on this coordinator's disk")

// blobStamp identifies a version of a blob file.
type blobStamp struct {
	size  int64
	mtime time.Time
}

// NewBlobStore opens (creating) a blob directory.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create blob directory %s: %w", dir, err)
	}
	return &Store{dir: dir, verified: map[string]blobStamp{}}, nil
}

// ValidDigest reports whether d is a lower-case hex SHA-256 (a blob's name).
func ValidDigest(d string) bool {
	if len(d) != sha256.Size*2 || strings.ToLower(d) != d {
		return false
	}
	_, err := hex.DecodeString(d)
	return err == nil
}

func (b *Store) path(digest string) string { return filepath.Join(b.dir, digest) }

// Has reports whether the blob is stored.
func (b *Store) Has(digest string) bool {
	if !ValidDigest(digest) {
		return false
	}
	_, err := os.Stat(b.path(digest))
	return err == nil
}

// Open opens a stored blob for reading and returns its size.
func (b *Store) Open(digest string) (*os.File, int64, error) {
	if !ValidDigest(digest) {
		return nil, 0, fmt.Errorf("open blob %q: not a sha256 digest: %w", digest, client.ErrBlobNotFound)
	}
	f, err := os.Open(b.path(digest))
	if os.IsNotExist(err) {
		return nil, 0, fmt.Errorf("open blob %s: %w", digest, client.ErrBlobNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open blob %s: %w", digest, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat blob %s: %w", digest, err)
	}
	if err := b.verify(f, digest, blobStamp{st.Size(), st.ModTime()}); err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// verify hashes f (unless this version of it hashed right before) and
// rewinds it; a mismatch quarantines the file and wraps ErrBlobNotFound.
func (b *Store) verify(f *os.File, digest string, stamp blobStamp) error {
	b.mu.Lock()
	ok := b.verified[digest] == stamp
	b.mu.Unlock()
	if ok {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read blob %s: %w", b.path(digest), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read blob %s: %w", b.path(digest), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		aside := b.path(digest) + ".damaged"
		if err := os.Rename(b.path(digest), aside); err != nil {
			aside = b.path(digest) // left in place; the next Open reports it again
		}
		return fmt.Errorf("blob %s is damaged (%d bytes hashing to %s; kept as %s): %w",
			b.path(digest), stamp.size, got, aside, client.ErrBlobNotFound)
	}
	b.mu.Lock()
	b.verified[digest] = stamp
	b.mu.Unlock()
	return nil
}

// Damaged returns where a damaged copy of the blob was moved aside, if one
// was.
func (b *Store) Damaged(digest string) (string, bool) {
	if !ValidDigest(digest) {
		return "", false
	}
	aside := b.path(digest) + ".damaged"
	_, err := os.Stat(aside)
	return aside, err == nil
}

// ReadAll returns a stored blob's bytes.
func (b *Store) ReadAll(digest string) ([]byte, error) {
	f, _, err := b.Open(digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", digest, err)
	}
	return data, nil
}

// Create starts writing a new blob.
func (b *Store) Create() (*Writer, error) {
	f, err := os.CreateTemp(b.dir, ".incoming-*")
	if err != nil {
		return nil, fmt.Errorf("create blob temp file in %s: %w: %w", b.dir, ErrStore, err)
	}
	return &Writer{store: b, f: f, h: sha256.New()}, nil
}

// Put stores data and returns its digest.
func (b *Store) Put(data []byte) (string, error) {
	w, err := b.Create()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return "", err
	}
	return w.Commit("", int64(len(data)))
}

// Prune deletes the blobs not in keep that were last modified more than
// grace ago (a blob being replicated is not referenced by the state until
// its digest commits), and abandoned temp files older than grace.
func (b *Store) Prune(keep []string, grace time.Duration) error {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return fmt.Errorf("list blobs in %s: %w", b.dir, err)
	}
	for _, e := range entries {
		if slices.Contains(keep, e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < grace {
			continue
		}
		if ValidDigest(e.Name()) || strings.HasPrefix(e.Name(), ".incoming-") {
			if err := os.Remove(filepath.Join(b.dir, e.Name())); err != nil {
				return fmt.Errorf("prune blob %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// Writer writes one blob; Commit verifies and publishes it, Abort
// discards it.
type Writer struct {
	store *Store
	f     *os.File
	h     hash.Hash
	n     int64
}

// Written is the number of bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Write appends bytes to the blob.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write blob %s: %w: %w", w.f.Name(), ErrStore, err)
	}
	return n, nil
}

// Commit checks the size and (when want is not empty) the digest, syncs and
// publishes the blob under its digest.
func (w *Writer) Commit(want string, size int64) (string, error) {
	digest := hex.EncodeToString(w.h.Sum(nil))
	if size >= 0 && w.n != size {
		w.Abort()
		return "", fmt.Errorf("blob %s: %d bytes, header says %d: %w", digest, w.n, size, client.ErrBadCheckpoint)
	}
	if want != "" && want != digest {
		w.Abort()
		return "", fmt.Errorf("blob: digest %s, header says %s: %w", digest, want, client.ErrBadCheckpoint)
	}
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return "", fmt.Errorf("sync blob %s: %w: %w", w.f.Name(), ErrStore, err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return "", fmt.Errorf("close blob %s: %w: %w", w.f.Name(), ErrStore, err)
	}
	if err := os.Rename(w.f.Name(), w.store.path(digest)); err != nil {
		os.Remove(w.f.Name())
		return "", fmt.Errorf("publish blob %s: %w: %w", w.store.path(digest), ErrStore, err)
	}
	if err := atomicfile.SyncDir(w.store.dir); err != nil {
		return "", fmt.Errorf("publish blob %s: %w: %w", w.store.path(digest), ErrStore, err)
	}
	return digest, nil
}

// Abort discards the blob.
func (w *Writer) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}
