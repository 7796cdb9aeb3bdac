package coordinator

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/whorl-ml/whorl/coordinator/blobstore"
	"github.com/whorl-ml/whorl/coordinator/storecheck"
	"github.com/whorl-ml/whorl/internal/filecheck"
)

// CheckDataDir reads every file of a coordinator's data dir and says which
// are intact, damaged or missing: the raft log (as checkBolt does before
// every start), raft's snapshots (their version and CRC; both storecheck's)
// and the checkpoint blobs (their digest). It changes nothing.
func CheckDataDir(dir string) []filecheck.Result {
	out := []filecheck.Result{checkRaftLog(filepath.Join(dir, "raft.db"))}
	out = append(out, checkSnapshots(filepath.Join(dir, "snapshots"))...)
	return append(out, checkBlobs(filepath.Join(dir, "blobs"))...)
}

func checkRaftLog(path string) filecheck.Result {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return filecheck.Result{Path: path, Status: filecheck.Missing, Detail: "raft log (a node without it starts empty)"}
	}
	if err := checkBolt(path); err != nil {
		return filecheck.Result{Path: path, Status: filecheck.Damaged, Detail: err.Error()}
	}
	return filecheck.Result{Path: path, Status: filecheck.Intact, Detail: "raft log"}
}

// checkSnapshots verifies each snapshot's state.bin against the CRC-64 its
// meta.json records (as raft does when it restores one).
func checkSnapshots(dir string) []filecheck.Result {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // no snapshot taken yet
	}
	var out []filecheck.Result
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		r := filecheck.Result{Path: path, Status: filecheck.Intact, Detail: "raft snapshot"}
		if err := storecheck.Snapshot(path); err != nil {
			r.Status, r.Detail = filecheck.Damaged, "raft snapshot: "+err.Error()
		}
		out = append(out, r)
	}
	return out
}

// checkBlobs hashes every checkpoint blob against its name.
func checkBlobs(dir string) []filecheck.Result {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []filecheck.Result
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		switch name := e.Name(); {
		case strings.HasSuffix(name, ".damaged"):
			out = append(out, filecheck.Result{Path: path, Status: filecheck.Damaged,
				Detail: "checkpoint blob found damaged and moved aside (kept as evidence)"})
		case blobstore.ValidDigest(name):
			out = append(out, checkBlob(path, name))
		}
	}
	return out
}

func checkBlob(path, digest string) filecheck.Result {
	f, err := os.Open(path)
	if err != nil {
		return filecheck.Result{Path: path, Status: filecheck.Damaged, Detail: err.Error()}
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return filecheck.Result{Path: path, Status: filecheck.Damaged, Detail: err.Error()}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return filecheck.Result{Path: path, Status: filecheck.Damaged,
			Detail: fmt.Sprintf("checkpoint blob: %d bytes hashing to %s, not its name", n, got)}
	}
	return filecheck.Result{Path: path, Status: filecheck.Intact, Detail: fmt.Sprintf("checkpoint blob, %d bytes", n)}
}

// checkBolt checks the raft log at path with storecheck.Bolt, a damaged
// file being ErrDamaged (whose message says how to recover); a file of
// another bbolt format is refused as storecheck.ErrUnknownFormat and left
// as it is: it is not damaged, only not this whorl's to read.
func checkBolt(path string) error {
	err := storecheck.Bolt(path)
	if errors.Is(err, storecheck.ErrDamaged) {
		return fmt.Errorf("raft log: %w: %w", ErrDamaged, err)
	}
	if err != nil {
		return fmt.Errorf("raft log: %w", err)
	}
	return nil
}

// DataDirVerdict says what restarting the coordinator on a data dir whose
// files CheckDataDir found rs does.
func DataDirVerdict(rs []filecheck.Result) string {
	for _, r := range rs {
		if filepath.Base(r.Path) == "raft.db" && r.Status == filecheck.Damaged {
			return "the node refuses to start: move this dir aside and restart it empty; the leader's snapshot catches it up (a single node has no peer to recover from)"
		}
	}
	if filecheck.Count(rs, filecheck.Damaged) > 0 {
		return "the node starts; damaged blobs are set aside and fetched again from a peer when needed"
	}
	return "the node restarts from this state"
}
