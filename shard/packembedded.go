package shard

import (
	"context"
	"fmt"
)

// EmbeddedName is how pack reports and errors name the embedded set as a
// source.
const EmbeddedName = "the embedded set"

// PackEmbedded writes the embedded set into dst as Pack writes a class
// folder: the same layout, the photos' own bytes and paths
// (class/file.jpg), so the packed set splits and trains as `--data ""`
// does. It is how a container, which has no photo folder, fills a bucket.
func PackEmbedded(ctx context.Context, dst Store, cfg PackConfig) (*Index, *PackReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("pack %s: %w", EmbeddedName, err)
	}
	l, files, err := embeddedListing()
	if err != nil {
		return nil, nil, fmt.Errorf("pack %s: %w", EmbeddedName, err)
	}
	return packListing(ctx, EmbeddedName, l, files, dst, cfg)
}

// packListing packs the listed items, read from files, into dst; what
// names the source in errors. A file that cannot be read is skipped and
// reported.
func packListing(ctx context.Context, what string, l *listing, files Source, dst Store, cfg PackConfig) (*Index, *PackReport, error) {
	p := &packer{cfg: cfg, dst: dst, x: &Index{Format: PackFormat, Classes: l.classes}}
	rep := &PackReport{Ignored: l.ignored, Skipped: append([]Skipped(nil), l.skipped...)}
	for _, it := range l.items {
		blobs, err := files.Fetch(ctx, []Item{it})
		if err != nil {
			p.abort()
			return nil, nil, fmt.Errorf("pack %s: %w", what, err)
		}
		if blobs[0].Err != nil {
			rep.Skipped = append(rep.Skipped, Skipped{Path: it.Path, Reason: blobs[0].Err.Error()})
			continue
		}
		if err := p.add(ctx, it, blobs[0].Data); err != nil {
			p.abort()
			return nil, nil, fmt.Errorf("pack %s into %s: %w", what, dst.URL(), err)
		}
		rep.Images++
		rep.Bytes += int64(len(blobs[0].Data))
	}
	if err := p.finish(ctx); err != nil {
		return nil, nil, fmt.Errorf("pack %s into %s: %w", what, dst.URL(), err)
	}
	sortSkipped(rep.Skipped)
	rep.Shards = len(p.x.Shards)
	return p.x, rep, nil
}
