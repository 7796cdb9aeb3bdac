package shard

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"path"
	"strings"
)

// The packed layout (shard/DESIGN.md): tar shards in WebDataset's layout
// plus one JSON index.
const (
	// PackFormat names the index's format and version; ParseIndex refuses
	// any other.
	PackFormat = "whorl-packed/1"
	// IndexName is the index's object name in a packed dataset.
	IndexName = "index.json"
	// DefaultShardBytes is the default size a shard grows to before the
	// next one starts (WebDataset's usual 100 MB-1 GB; smaller here, so a
	// small set still spreads over several).
	DefaultShardBytes = 64 << 20
	// MinShardBytes and MaxShardBytes bound PackConfig.ShardBytes.
	MinShardBytes, MaxShardBytes = 1 << 10, 4 << 30
	// maxIndexBytes bounds the index read: 1 GiB holds ~6 M images.
	maxIndexBytes = 1 << 30
)

// Index lists a packed dataset: its classes, its shards and every image's
// place, so that any image can be read with one range request.
type Index struct {
	// Format is PackFormat.
	Format string `json:"format"`
	// Classes are the class names, sorted.
	Classes []string `json:"classes"`
	// Shards are the tar files, in order.
	Shards []IndexShard `json:"shards"`
	// Images are every packed image, sorted by class then path.
	Images []IndexImage `json:"images"`
}

// IndexShard is one tar file of a packed dataset.
type IndexShard struct {
	// Name is the object's name beside the index ("shard-000000.tar").
	Name string `json:"name"`
	// Bytes is the file's size; SHA256 its lowercase hex digest.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// IndexImage is one image's entry: which shard holds its file's bytes and
// where.
type IndexImage struct {
	// Key is the WebDataset sample key: the tar members are Key+Ext and
	// Key+".cls".
	Key string `json:"key"`
	// Ext is the image member's extension, lower case (".jpg", ".png").
	Ext string `json:"ext"`
	// Path is the file's path in the folder it was packed from
	// ("class/file.jpg"): the image's identity in splits and manifests.
	Path string `json:"path"`
	// Class indexes Index.Classes.
	Class int `json:"class"`
	// Shard indexes Index.Shards; Offset and Size are the file's bytes in
	// it (after the member's tar header).
	Shard  int   `json:"shard"`
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
	// SHA256 is the lowercase hex digest of the file's bytes.
	SHA256 string `json:"sha256"`
}

// Items are the index's images as a Dataset's items.
func (x *Index) Items() []Item {
	out := make([]Item, len(x.Images))
	for i, im := range x.Images {
		out[i] = Item{Path: im.Path, SHA256: im.SHA256, Class: im.Class}
	}
	return out
}

// ParseIndex decodes and checks an index: the format, unknown fields,
// every image inside its shard and after the previous one, digests, paths
// and keys. Its errors wrap ErrPack and name the entry.
func ParseIndex(b []byte) (*Index, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var x Index
	if err := dec.Decode(&x); err != nil {
		return nil, errorf(ErrPack, "index: %v", err)
	}
	if dec.More() {
		return nil, errorf(ErrPack, "index: data after the JSON object")
	}
	if err := x.check(); err != nil {
		return nil, err
	}
	return &x, nil
}

// check is ParseIndex's validation.
func (x *Index) check() error {
	if x.Format != PackFormat {
		return errorf(ErrPack, "index: format %q, this whorl reads %q", x.Format, PackFormat)
	}
	if len(x.Classes) < 2 {
		return errorf(ErrPack, "index: %d classes, need at least 2", len(x.Classes))
	}
	for i, c := range x.Classes {
		if c == "" || strings.ContainsAny(c, "/\\") || (i > 0 && x.Classes[i-1] >= c) {
			return errorf(ErrPack, "index: class %d %q: empty, not a plain name, or out of order", i, c)
		}
	}
	for i, s := range x.Shards {
		if !validName(s.Name) || s.Bytes < 0 || !isDigest(s.SHA256) {
			return errorf(ErrPack, "index: shard %d %q: bad name, size or sha256", i, s.Name)
		}
	}
	return x.checkImages()
}

// checkImages checks each image's entry against its shard and the previous
// image.
func (x *Index) checkImages() error {
	keys := make(map[string]bool, len(x.Images))
	paths := make(map[string]bool, len(x.Images))
	end := make([]int64, len(x.Shards)) // end of the last image seen in each shard
	for i, im := range x.Images {
		bad := func(why string) error {
			return errorf(ErrPack, "index: image %d (%s, key %q): %s", i, im.Path, im.Key, why)
		}
		switch {
		case im.Key == "" || strings.ContainsAny(im.Key, "./\\") || len(im.Key) > 64 || keys[im.Key]:
			return bad("key empty, repeated, too long or holding '.', '/' or '\\'")
		case !isImageName(im.Ext) || im.Ext != strings.ToLower(im.Ext) || strings.Count(im.Ext, ".") != 1 || im.Ext[0] != '.':
			return bad("extension is not .jpg, .jpeg or .png in lower case")
		case !validPath(im.Path) || paths[im.Path]:
			return bad("path not class/file or repeated")
		case im.Class < 0 || im.Class >= len(x.Classes) || path.Dir(im.Path) != x.Classes[im.Class]:
			return bad("class out of range or not the path's folder")
		case i > 0 && (x.Images[i-1].Class > im.Class || (x.Images[i-1].Class == im.Class && x.Images[i-1].Path >= im.Path)):
			return bad("not sorted by class then path")
		case im.Shard < 0 || im.Shard >= len(x.Shards):
			return bad(fmt.Sprintf("shard %d of %d", im.Shard, len(x.Shards)))
		case im.Size < 0 || im.Offset < end[im.Shard]+tarBlock || im.Offset%tarBlock != 0 || im.Offset+im.Size > x.Shards[im.Shard].Bytes:
			return bad(fmt.Sprintf("bytes [%d, %d) are not after the previous member inside shard %d (%d bytes)",
				im.Offset, im.Offset+im.Size, im.Shard, x.Shards[im.Shard].Bytes))
		case !isDigest(im.SHA256):
			return bad("sha256 is not 64 lowercase hex digits")
		}
		keys[im.Key], paths[im.Path] = true, true
		end[im.Shard] = im.Offset + im.Size
	}
	return nil
}

// tarBlock is tar's block size: every header and member starts on one.
const tarBlock = 512

// validName reports whether s is a plain object name beside the index.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\") && len(s) <= 255
}

// validPath reports whether p is "class/file" with plain names.
func validPath(p string) bool {
	dir, file := path.Split(p)
	return validName(strings.TrimSuffix(dir, "/")) && validName(file) && isImageName(file)
}

// isDigest reports whether s is a lowercase hex SHA-256.
func isDigest(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// digest counts and hashes (SHA-256) the bytes written to it: a shard as
// Pack writes it (io.MultiWriter) or VerifyPack reads it (io.TeeReader).
type digest struct {
	n int64
	h hash.Hash
}

func newDigest() *digest { return &digest{h: sha256.New()} }

func (d *digest) Write(b []byte) (int, error) {
	d.n += int64(len(b))
	return d.h.Write(b)
}

// hex is the lowercase hex digest of everything written.
func (d *digest) hex() string { return hex.EncodeToString(d.h.Sum(nil)) }
