// Package atomicfile writes files so that a crash, a kill or a full disk
// leaves the old file or the new one, never half of one: the bytes go to a
// temporary file in the same directory, which is synced, renamed over the
// target, and the directory synced so the rename itself is durable. It is
// the one way whorl writes the files a rerun reads (checkpoints, the
// manifest, the report and its plots, cached phase results).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to path atomically with permissions perm. Its errors
// name path and the step that failed; on error path is unchanged and no
// temporary file is left behind.
func Write(path string, data []byte, perm os.FileMode) error {
	p, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := p.Write(data); err != nil {
		p.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return p.Commit()
}

// Pending is a file being written atomically (for bytes that arrive as a
// stream): write to its File, then Commit, or Abort to discard it. Until
// Commit returns, path is unchanged.
type Pending struct {
	*os.File
	path string
	perm os.FileMode
}

// Create starts writing path atomically with permissions perm: a temporary
// file in path's directory.
func Create(path string, perm os.FileMode) (*Pending, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &Pending{File: f, path: path, perm: perm}, nil
}

// Commit syncs the temporary file, renames it over the target and syncs the
// directory; on error the temporary file is removed and the target is
// unchanged.
func (p *Pending) Commit() (err error) {
	defer func() {
		if err != nil {
			p.Abort()
		}
	}()
	if err := p.Chmod(p.perm); err != nil {
		return fmt.Errorf("write %s: chmod: %w", p.path, err)
	}
	if err := p.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", p.path, err)
	}
	if err := p.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", p.path, err)
	}
	if err := os.Rename(p.Name(), p.path); err != nil {
		return fmt.Errorf("write %s: rename: %w", p.path, err)
	}
	return SyncDir(filepath.Dir(p.path))
}

// Abort discards the temporary file.
func (p *Pending) Abort() {
	p.Close()
	os.Remove(p.Name())
}

// SyncDir flushes a directory's entries (a rename into it) to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
