package storecheck

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// boltFile writes a real bbolt file with some data and returns its path.
func boltFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raft.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("logs"))
		if err != nil {
			return err
		}
		for i := range 200 {
			if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), make([]byte, 300)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

// setMetaVersion rewrites both meta pages' format version, with a valid
// checksum (a sound file of another bbolt format).
func setMetaVersion(t *testing.T, path string, version uint32) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ps := int64(os.Getpagesize())
	for _, page := range []int64{0, ps} {
		var m [64]byte
		if _, err := f.ReadAt(m[:], page+boltPageHeader); err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint32(m[4:], version)
		h := fnv.New64a()
		h.Write(m[:boltMetaSum])
		binary.LittleEndian.PutUint64(m[boltMetaSum:], h.Sum64())
		if _, err := f.WriteAt(m[:], page+boltPageHeader); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBolt checks a sound file passes and each kind of bad file is refused
// with the sentinel and the file named, the file left unchanged.
func TestBolt(t *testing.T) {
	if err := Bolt(filepath.Join(t.TempDir(), "missing.db")); err != nil {
		t.Errorf("missing file: %v, want nil (bbolt creates it)", err)
	}
	good := boltFile(t)
	if err := Bolt(good); err != nil {
		t.Fatalf("sound file: %v", err)
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   error
		has    []string
	}{
		{"truncated", func(t *testing.T, path string) {
			st, _ := os.Stat(path)
			if err := os.Truncate(path, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, ErrDamaged, []string{"truncated"}},
		{"meta pages zeroed", func(t *testing.T, path string) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			zero := make([]byte, 2*os.Getpagesize())
			if _, err := f.WriteAt(zero, 0); err != nil {
				t.Fatal(err)
			}
		}, ErrDamaged, []string{"neither meta page is valid"}},
		{"another bbolt format", func(t *testing.T, path string) { setMetaVersion(t, path, 3) }, ErrUnknownFormat,
			[]string{"bbolt data format 3", "format 2 only", "nothing was changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := boltFile(t)
			tc.damage(t, path)
			before, _ := os.ReadFile(path)
			err := Bolt(path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Bolt = %v, want %v", err, tc.want)
			}
			for _, s := range append(tc.has, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("the check changed the file")
			}
		})
	}
}

// snapshotDir takes a real snapshot with raft's FileSnapshotStore and
// returns its folder.
func snapshotDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	store, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 2, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(sink, `{"state":"of the job"}`); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "snapshots", sink.ID())
}

// TestSnapshot checks a sound raft snapshot passes, a changed state.bin is
// damaged and a meta.json of an unknown version is refused by name.
func TestSnapshot(t *testing.T) {
	good := snapshotDir(t)
	if err := Snapshot(good); err != nil {
		t.Fatalf("sound snapshot: %v", err)
	}
	bad := snapshotDir(t)
	if err := os.WriteFile(filepath.Join(bad, "state.bin"), []byte(`{"state":"of another job"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Snapshot(bad); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "CRC") {
		t.Errorf("changed state.bin: %v, want ErrDamaged naming the CRC", err)
	}
	future := snapshotDir(t)
	metaPath := filepath.Join(future, "meta.json")
	b, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	meta["Version"] = 9
	if b, err = json.Marshal(meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(metaPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Snapshot(future); !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("version 9: %v, want ErrUnknownFormat naming the version", err)
	}
}
