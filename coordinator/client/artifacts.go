package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/whorl-ml/whorl/internal/atomicfile"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
)

// ErrBadArtifact: a result artifact named by a coordinator fails its check
// (a name that is not a plain file name, bytes that do not hash to its
// digest or not of its size). It never crosses the wire: the downloader
// finds it.
var ErrBadArtifact = errors.New("bad result artifact")

// maxArtifactName bounds an artifact's name (a file name on every common
// file system fits).
const maxArtifactName = 255

// CheckArtifactName refuses an artifact name that is not a plain file name
// in one directory: empty, ".", "..", longer than 255 bytes, or holding a
// path separator ('/' or '\\'), a ".." or a NUL byte. A coordinator's
// answer is not trusted to stay inside the folder it is written to.
func CheckArtifactName(name string) error {
	switch {
	case name == "" || name == "." || len(name) > maxArtifactName:
		return fmt.Errorf("artifact name %q: empty, \".\" or over %d bytes: %w", name, maxArtifactName, ErrBadArtifact)
	case strings.ContainsAny(name, `/\`+"\x00") || strings.Contains(name, ".."):
		return fmt.Errorf("artifact name %q: holds a path separator, \"..\" or a NUL byte: %w", name, ErrBadArtifact)
	}
	return nil
}

// DownloadArtifact writes artifact a into dir as a.Name, verifying its size
// and SHA-256 while it is written: the bytes go to a temporary file in dir
// that is renamed into place only when they match (a mismatch is
// ErrBadArtifact naming the file and both digests, and leaves no file). A
// file already there with the right digest is kept (fetched false), so a
// rerun resumes. The blob comes from FetchCheckpoint, which any
// coordinator holding it serves.
func (c *Client) DownloadArtifact(ctx context.Context, dir string, a *pb.Artifact) (fetched bool, err error) {
	if err := CheckArtifactName(a.GetName()); err != nil {
		return false, err
	}
	path := filepath.Join(dir, a.GetName())
	if same, err := hasFile(path, a); err != nil || same {
		return false, err
	}
	tmp, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return false, fmt.Errorf("download: %w", err)
	}
	err = c.do(ctx, "fetch artifact "+a.GetName(), c.cfg.AttemptTimeout, func(at *attempt) error {
		return c.streamArtifact(at, tmp.File, a)
	})
	if err != nil {
		tmp.Abort()
		return false, fmt.Errorf("download %s: %w", path, err)
	}
	if err := tmp.Commit(); err != nil {
		return false, fmt.Errorf("download: %w", err)
	}
	return true, nil
}

// streamArtifact is one attempt of DownloadArtifact: it writes the blob
// into f from its start and checks its size and digest.
func (c *Client) streamArtifact(at *attempt, f *os.File, a *pb.Artifact) error {
	if err := rewind(f); err != nil {
		return err
	}
	stream, err := svc(at.conn).FetchCheckpoint(at.ctx, &pb.FetchCheckpointRequest{Digest: a.GetDigest()})
	if err != nil {
		return err
	}
	h := sha256.New()
	var n uint64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		at.expect(c.cfg.AttemptTimeout)
		chunk := msg.GetChunk()
		if n += uint64(len(chunk)); n > a.GetSize() {
			return fmt.Errorf("artifact %s: more than its %d bytes received: %w", a.GetName(), a.GetSize(), ErrBadArtifact)
		}
		if _, err := io.MultiWriter(f, h).Write(chunk); err != nil {
			return fmt.Errorf("write %s: %w", f.Name(), err)
		}
	}
	return checkSum(a, n, h)
}

// checkSum compares what was received with the artifact's size and digest.
func checkSum(a *pb.Artifact, n uint64, h hash.Hash) error {
	got := hex.EncodeToString(h.Sum(nil))
	if n != a.GetSize() || got != a.GetDigest() {
		return fmt.Errorf("artifact %s: received %d bytes hashing to %s, want %d bytes of digest %s: %w",
			a.GetName(), n, got, a.GetSize(), a.GetDigest(), ErrBadArtifact)
	}
	return nil
}

// hasFile reports whether path holds the artifact's bytes already.
func hasFile(path string, a *pb.Artifact) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return uint64(n) == a.GetSize() && hex.EncodeToString(h.Sum(nil)) == a.GetDigest(), nil
}

// rewind empties f for another attempt.
func rewind(f *os.File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind %s: %w", f.Name(), err)
	}
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("truncate %s: %w", f.Name(), err)
	}
	return nil
}

// CheckArtifacts refuses a list of artifacts with a name that is not a
// plain file name (CheckArtifactName) or that is there twice (two files
// written over one another).
func CheckArtifacts(as []*pb.Artifact) error {
	seen := map[string]bool{}
	for _, a := range as {
		if err := CheckArtifactName(a.GetName()); err != nil {
			return err
		}
		if seen[a.GetName()] {
			return fmt.Errorf("artifact name %q is listed twice: %w", a.GetName(), ErrBadArtifact)
		}
		seen[a.GetName()] = true
	}
	return nil
}
