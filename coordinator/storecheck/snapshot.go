package storecheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// Snapshot verifies a snapshot of raft's FileSnapshotStore (the folder
// dir: meta.json and state.bin, as hashicorp/raft v1 writes them): its
// version is one raft reads, and state.bin has the size and CRC-64 (ECMA)
// meta.json records, as raft checks when it restores one.
func Snapshot(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return err
	}
	var meta struct {
		raft.SnapshotMeta
		CRC []byte
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return fmt.Errorf("%w: meta.json: %w", ErrDamaged, err)
	}
	if meta.Version < raft.SnapshotVersionMin || meta.Version > raft.SnapshotVersionMax {
		return fmt.Errorf("%w: raft snapshot version %d, and this whorl reads versions %d..%d (hashicorp/raft v1); nothing was changed",
			ErrUnknownFormat, meta.Version, raft.SnapshotVersionMin, raft.SnapshotVersionMax)
	}
	f, err := os.Open(filepath.Join(dir, "state.bin"))
	if err != nil {
		return err
	}
	defer f.Close()
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("%w: state.bin: %w", ErrDamaged, err)
	}
	if n != meta.Size || !bytes.Equal(h.Sum(nil), meta.CRC) {
		return fmt.Errorf("%w: state.bin is %d bytes with CRC %x, meta.json says %d bytes with CRC %x", ErrDamaged, n, h.Sum(nil), meta.Size, meta.CRC)
	}
	return nil
}
