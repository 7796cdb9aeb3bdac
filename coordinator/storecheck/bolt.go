package storecheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt's on-disk constants (go.etcd.io/bbolt db.go, page.go; the same
// in every bbolt release up to v1.4, whose data format is version 2): a
// page starts with a 16-byte header (id, flags, count, overflow); the two
// meta pages hold the fields read below, checksummed with FNV-64a over the
// first 56 bytes of the meta.
const (
	boltMagic = 0xED0CDAED
	// BoltVersion is the bbolt data format this package reads; a file of
	// another one is refused by name, never read.
	BoltVersion      = 2
	boltPageHeader   = 16
	boltMetaSum      = 56
	boltFreelistFlag = 0x10
	boltNoFreelist   = ^uint64(0)
)

// boltMeta is the part of a bbolt meta page Bolt needs.
type boltMeta struct {
	pageSize             uint32
	root, freelist, pgid uint64
	txid                 uint64
	valid                bool
	// version is the data format a meta page with bbolt's magic names
	// (0: no such page).
	version uint32
}

// Bolt verifies the bbolt file at path (the raft log) before bbolt maps
// it: bbolt trusts its file, and a truncated one makes it read past the
// end of the mapping (a SIGBUS no recover catches) or panic on a bad
// freelist page. A missing or empty file is fine (bbolt creates it). It
// then opens the file read-only and runs bbolt's own consistency check
// over every page. A problem with the file is ErrDamaged, a file of
// another bbolt data format ErrUnknownFormat; the error names the file.
func Bolt(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Size() == 0 {
		return nil
	}
	if err := checkBoltLayout(f, st.Size()); err != nil {
		if !errors.Is(err, ErrUnknownFormat) && !errors.Is(err, ErrDamaged) {
			err = fmt.Errorf("%w: %w", ErrDamaged, err)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := checkBoltPages(path); err != nil {
		return fmt.Errorf("%s: %w: %w", path, ErrDamaged, err)
	}
	return nil
}

// checkBoltLayout checks the newest valid meta page against the file size:
// every page it references (root, freelist and its overflow, the high-water
// mark) lies inside the file.
func checkBoltLayout(f io.ReaderAt, size int64) error {
	m0 := readBoltMeta(f, 0)
	m1 := readBoltMeta(f, int64(m0.pageSize))
	if !m0.valid {
		m1 = readBoltMeta(f, 4096) // meta 0 unreadable: try the default page size
	}
	m := m0
	if !m.valid || (m1.valid && m1.txid > m.txid) {
		m = m1
	}
	if !m.valid {
		for _, v := range []uint32{m0.version, m1.version} {
			if v != 0 && v != BoltVersion {
				return fmt.Errorf("%w: bbolt data format %d, and this whorl reads format %d only (go.etcd.io/bbolt up to v1.4); nothing was changed: open it with the whorl that wrote it", ErrUnknownFormat, v, BoltVersion)
			}
		}
		return fmt.Errorf("%w: neither meta page is valid (magic, version or checksum)", ErrDamaged)
	}
	ps := int64(m.pageSize)
	if need := int64(m.pgid) * ps; need > size {
		return fmt.Errorf("file is %d bytes but its meta page references %d pages of %d bytes (%d bytes): truncated", size, m.pgid, ps, need)
	}
	if m.root >= m.pgid {
		return fmt.Errorf("root page %d beyond the high-water mark %d", m.root, m.pgid)
	}
	if m.freelist == boltNoFreelist {
		return nil
	}
	if m.freelist >= m.pgid {
		return fmt.Errorf("freelist page %d beyond the high-water mark %d", m.freelist, m.pgid)
	}
	var hdr [boltPageHeader]byte
	if _, err := f.ReadAt(hdr[:], int64(m.freelist)*ps); err != nil {
		return fmt.Errorf("read freelist page %d: %w", m.freelist, err)
	}
	id, flags := binary.LittleEndian.Uint64(hdr[0:]), binary.LittleEndian.Uint16(hdr[8:])
	overflow := binary.LittleEndian.Uint32(hdr[12:])
	if id != m.freelist || flags&boltFreelistFlag == 0 {
		return fmt.Errorf("page %d is not a freelist page (id %d, flags %#x)", m.freelist, id, flags)
	}
	if end := (int64(m.freelist) + int64(overflow) + 1) * ps; end > size {
		return fmt.Errorf("freelist pages end at byte %d, past the end of the %d-byte file", end, size)
	}
	return nil
}

// readBoltMeta reads the meta page at off (invalid on any problem).
func readBoltMeta(f io.ReaderAt, off int64) boltMeta {
	var b [boltPageHeader + 64]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return boltMeta{}
	}
	m := b[boltPageHeader:]
	le := binary.LittleEndian
	h := fnv.New64a()
	h.Write(m[:boltMetaSum])
	sum := le.Uint64(m[boltMetaSum:])
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}
	}
	if v := le.Uint32(m[4:]); v != BoltVersion || (sum != 0 && sum != h.Sum64()) {
		if sum == h.Sum64() {
			return boltMeta{version: v} // a sound page of another format
		}
		return boltMeta{}
	}
	ps := le.Uint32(m[8:])
	if ps < 512 || ps&(ps-1) != 0 {
		return boltMeta{}
	}
	return boltMeta{pageSize: ps, root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:]), valid: true, version: BoltVersion}
}

// checkBoltPages runs bbolt's consistency check (every page reachable once,
// freelist and tree agree) on a read-only open of the file, turning a
// panic of bbolt's into an error.
func checkBoltPages(path string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bbolt: %v", p)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return errors.Join(errs...)
	})
}
