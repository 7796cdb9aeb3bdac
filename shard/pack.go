package shard

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/whorl-ml/whorl/internal/validate"
)

// PackConfig sets how Pack cuts a dataset into shards.
type PackConfig struct {
	// ShardBytes is the size a shard grows to before the next one starts
	// (an image larger than it gets a shard of its own).
	ShardBytes int64
	// Prefix names the shards: Prefix-000000.tar, Prefix-000001.tar, ...
	Prefix string
}

// DefaultPackConfig returns shards of DefaultShardBytes named shard-*.tar.
func DefaultPackConfig() PackConfig {
	return PackConfig{ShardBytes: DefaultShardBytes, Prefix: "shard"}
}

// Validate names the first field out of bounds.
func (c PackConfig) Validate() error {
	p := validate.New(ErrConfig, "PackConfig.")
	validate.InRange(p, "ShardBytes", c.ShardBytes, MinShardBytes, MaxShardBytes)
	if !validName(c.Prefix) || strings.Contains(c.Prefix, ".") {
		p.Addf("Prefix", "= %q, must be a plain name without dots", c.Prefix)
	}
	return p.Err()
}

// PackReport says what Pack read and wrote.
type PackReport struct {
	// Images and Bytes are the image files packed and their total size.
	Images int   `json:"images"`
	Bytes  int64 `json:"bytes"`
	// Shards is how many tar files were written.
	Shards int `json:"shards"`
	// Ignored and Skipped are the folder's entries left out, as Load
	// counts them (an image that does not decode is packed; loading
	// applies the bad-image policy).
	Ignored Ignored   `json:"ignored"`
	Skipped []Skipped `json:"skipped"`
}

// Pack writes the class folder src into dst as tar shards in WebDataset's
// layout (<key>.jpg and <key>.cls per image, keys in class-then-path order)
// and, last, the index: a store without an index is not a packed dataset,
// so an interrupted pack is never read as a whole one. The same folder
// packs to the same bytes.
func Pack(ctx context.Context, src string, dst Store, cfg PackConfig) (*Index, *PackReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("pack %s: %w", src, err)
	}
	l, err := listFolder(src)
	if err != nil {
		return nil, nil, fmt.Errorf("pack %s: %w", src, err)
	}
	return packListing(ctx, src, l, FolderSource{Dir: src}, dst, cfg)
}

// packer is Pack's state: the index so far and the open shard.
type packer struct {
	cfg    PackConfig
	dst    Store
	x      *Index
	out    io.WriteCloser // the open shard (nil: none)
	cancel context.CancelFunc
	cw     *digest // what the open shard has been given
	tw     *tar.Writer
}

// add appends one image (and its class member) to the open shard,
// starting a new one when the open one is full.
func (p *packer) add(ctx context.Context, it Item, data []byte) error {
	if p.tw != nil && p.cw.n+int64(len(data))+3*tarBlock > p.cfg.ShardBytes {
		if err := p.closeShard(); err != nil {
			return err
		}
	}
	if p.tw == nil {
		if err := p.openShard(ctx); err != nil {
			return err
		}
	}
	key := fmt.Sprintf("%09d", len(p.x.Images))
	ext := strings.ToLower(path.Ext(it.Path))
	if err := p.member(key+ext, data); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	im := IndexImage{Key: key, Ext: ext, Path: it.Path, Class: it.Class, Shard: len(p.x.Shards) - 1,
		Offset: p.cw.n - int64(len(data)), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	p.x.Images = append(p.x.Images, im)
	return p.member(key+".cls", []byte(strconv.Itoa(it.Class)))
}

// member writes one tar member with fixed metadata (so that packing is
// reproducible).
func (p *packer) member(name string, data []byte) error {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)),
		ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
	if err := p.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("shard %s: %w", p.x.Shards[len(p.x.Shards)-1].Name, err)
	}
	if _, err := p.tw.Write(data); err != nil {
		return fmt.Errorf("shard %s: %w", p.x.Shards[len(p.x.Shards)-1].Name, err)
	}
	return nil
}

// openShard starts the next shard.
func (p *packer) openShard(ctx context.Context) error {
	name := fmt.Sprintf("%s-%06d.tar", p.cfg.Prefix, len(p.x.Shards))
	ctx, cancel := context.WithCancel(ctx)
	w, err := p.dst.Create(ctx, name)
	if err != nil {
		cancel()
		return fmt.Errorf("create shard %s: %w", name, err)
	}
	p.cancel = cancel
	p.x.Shards = append(p.x.Shards, IndexShard{Name: name})
	p.out, p.cw = w, newDigest()
	p.tw = tar.NewWriter(io.MultiWriter(w, p.cw))
	return nil
}

// closeShard ends the open shard's tar and object, recording its size and
// digest.
func (p *packer) closeShard() error {
	s := &p.x.Shards[len(p.x.Shards)-1]
	err := p.tw.Close()
	if err != nil {
		p.cancel() // the store drops the object
	}
	if cerr := p.out.Close(); err == nil {
		err = cerr
	}
	p.cancel()
	if err != nil {
		return fmt.Errorf("write shard %s: %w", s.Name, err)
	}
	s.Bytes, s.SHA256 = p.cw.n, p.cw.hex()
	p.tw, p.out, p.cw = nil, nil, nil
	return nil
}

// abort drops the open shard: a Store discards an object whose writer's
// context ended before Close.
func (p *packer) abort() {
	if p.out != nil {
		p.cancel()
		p.out.Close()
	}
}

// finish closes the last shard and writes the index.
func (p *packer) finish(ctx context.Context) error {
	if p.tw != nil {
		if err := p.closeShard(); err != nil {
			return err
		}
	}
	if err := p.x.check(); err != nil {
		return err
	}
	b, err := json.Marshal(p.x)
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	w, err := p.dst.Create(ctx, IndexName)
	if err != nil {
		return fmt.Errorf("create %s: %w", IndexName, err)
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return fmt.Errorf("write %s: %w", IndexName, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", IndexName, err)
	}
	return nil
}

// Print writes the report for a person: what was packed where, and each
// file left out.
func (r *PackReport) Print(w io.Writer, url string) {
	fmt.Fprintf(w, "packed %d images (%d bytes) into %d shards at %s\n", r.Images, r.Bytes, r.Shards, url)
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "  skipped %s: %s\n", s.Path, s.Reason)
	}
}
