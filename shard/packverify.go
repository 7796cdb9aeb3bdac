package shard

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// PackProblem is one thing wrong in a packed dataset, named by shard,
// byte offset and image.
type PackProblem struct {
	Shard  string `json:"shard"`
	Offset int64  `json:"offset"`
	// Path is the image concerned ("" for the shard as a whole).
	Path   string `json:"path,omitempty"`
	Detail string `json:"detail"`
}

func (p PackProblem) String() string {
	s := fmt.Sprintf("%s offset %d", p.Shard, p.Offset)
	if p.Path != "" {
		s += " (" + p.Path + ")"
	}
	return s + ": " + p.Detail
}

// VerifyReport is what VerifyPack read and found.
type VerifyReport struct {
	// Shards, Images and Bytes are what the index lists.
	Shards, Images int
	Bytes          int64
	// Problems is every damage found, in shard order; none means every
	// byte matched the index.
	Problems []PackProblem
}

// VerifyPack reads every shard of the packed dataset in store whole and
// checks it against the index: the shard's size and digest, each member's
// name, place and digest, and each class member. The error is for an index
// that cannot be read or a store that fails; damage is a Problem.
func VerifyPack(ctx context.Context, store Store) (*VerifyReport, error) {
	x, err := ReadIndex(ctx, store)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Shards: len(x.Shards), Images: len(x.Images)}
	byShard := make([][]IndexImage, len(x.Shards))
	for _, im := range x.Images {
		byShard[im.Shard] = append(byShard[im.Shard], im)
	}
	for i, s := range x.Shards {
		rep.Bytes += s.Bytes
		v := &shardVerifier{x: x, shard: s, want: byShard[i]}
		if err := v.run(ctx, store); err != nil {
			return nil, err
		}
		rep.Problems = append(rep.Problems, v.problems...)
	}
	return rep, nil
}

// shardVerifier checks one shard as it streams past.
type shardVerifier struct {
	x        *Index
	shard    IndexShard
	want     []IndexImage // the shard's images, in order
	next     int          // the next member expected: image next/2, its data (even) or class (odd)
	problems []PackProblem
}

func (v *shardVerifier) add(off int64, path, format string, args ...any) {
	v.problems = append(v.problems, PackProblem{Shard: v.shard.Name, Offset: off, Path: path, Detail: fmt.Sprintf(format, args...)})
}

// run streams the shard and checks each member, then the whole.
func (v *shardVerifier) run(ctx context.Context, store Store) error {
	r, err := store.Open(ctx, v.shard.Name)
	if err != nil {
		v.add(0, "", "cannot be opened: %v", err)
		return ctx.Err()
	}
	defer r.Close()
	cr := newDigest()
	tee := io.TeeReader(r, cr)
	tr := tar.NewReader(tee)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			v.add(cr.n, "", "tar: %v (the members after this are not checked)", err)
			break
		}
		if err := v.member(h, cr.n, tr); err != nil {
			v.add(cr.n, "", "read: %v", err)
			break
		}
	}
	if _, err := io.Copy(io.Discard, tee); err != nil { // the tail after the end blocks
		v.add(cr.n, "", "read: %v", err)
	}
	for ; v.next < 2*len(v.want); v.next += 2 {
		im := v.want[v.next/2]
		v.add(im.Offset, im.Path, "missing: the index lists key %s here", im.Key)
	}
	if sum := cr.hex(); cr.n != v.shard.Bytes || sum != v.shard.SHA256 {
		v.add(0, "", "%d bytes with sha256 %s, the index says %d bytes with %s", cr.n, sum, v.shard.Bytes, v.shard.SHA256)
	}
	return ctx.Err()
}

// member checks one tar member at data offset off against the next one
// the index expects.
func (v *shardVerifier) member(h *tar.Header, off int64, r io.Reader) error {
	if v.next >= 2*len(v.want) {
		v.add(off, "", "member %q is not in the index", h.Name)
		return nil
	}
	im := v.want[v.next/2]
	class := v.next%2 == 1
	v.next++
	name := im.Key + im.Ext
	if class {
		name = im.Key + ".cls"
	}
	if h.Name != name {
		v.add(off, im.Path, "member %q where the index expects %q", h.Name, name)
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<30))
	if err != nil {
		return err
	}
	if class {
		if got, want := string(data), strconv.Itoa(im.Class); got != want {
			v.add(off, im.Path, "class member says %q, the index %s (%s)", got, want, v.x.Classes[im.Class])
		}
		return nil
	}
	sum := sha256.Sum256(data)
	if off != im.Offset || int64(len(data)) != im.Size || hex.EncodeToString(sum[:]) != im.SHA256 {
		v.add(off, im.Path, "%d bytes with sha256 %x, the index says %d bytes at offset %d with %s",
			len(data), sum, im.Size, im.Offset, im.SHA256)
	}
	return nil
}

// Print writes each problem, then a summary line.
func (r *VerifyReport) Print(w io.Writer, url string) {
	for _, p := range r.Problems {
		fmt.Fprintln(w, p)
	}
	fmt.Fprintf(w, "%s: %d shards, %d images, %d bytes: %d problems\n", url, r.Shards, r.Images, r.Bytes, len(r.Problems))
}

// Err is nil for an intact pack, else an ErrPack error counting the
// problems.
func (r *VerifyReport) Err(url string) error {
	if len(r.Problems) == 0 {
		return nil
	}
	return errorf(ErrPack, "%s: %d problems", url, len(r.Problems))
}
