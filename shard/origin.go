package shard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Origin is where a dataset's images come from, before any is decoded: a
// class folder, a packed dataset (a folder or URL holding IndexName and
// its shards) or the embedded set. Close it when done with Source.
type Origin struct {
	// Name is the folder, the URL, or "embedded".
	Name string
	// Classes and Items are the classes and images found, sorted.
	Classes []string
	Items   []Item
	// Ignored and Skipped are the entries of a class folder left out.
	Ignored Ignored
	Skipped []Skipped
	// Source serves the images' file bytes.
	Source Source
	// Index is a packed dataset's index (nil otherwise).
	Index *Index

	store Store
}

// OpenOrigin lists the images at loc: "" is the embedded set; a URL
// (scheme://...) or a folder holding IndexName is a packed dataset (only
// its index is read); any other folder is a class folder.
func OpenOrigin(ctx context.Context, loc string) (*Origin, error) {
	switch {
	case loc == "":
		l, src, err := embeddedListing()
		if err != nil {
			return nil, err
		}
		return fromListing("embedded", l, src), nil
	case IsURL(loc) || isPackedDir(loc):
		return openPacked(ctx, loc)
	}
	l, err := listFolder(loc)
	if err != nil {
		return nil, err
	}
	return fromListing(loc, l, FolderSource{Dir: loc}), nil
}

// fromListing is an Origin of a listing.
func fromListing(name string, l *listing, src Source) *Origin {
	return &Origin{Name: name, Classes: l.classes, Items: l.items, Ignored: l.ignored, Skipped: l.skipped, Source: src}
}

// isPackedDir reports whether dir is a folder holding a packed index.
func isPackedDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, IndexName))
	return err == nil
}

// openPacked opens the store at loc and reads its index.
func openPacked(ctx context.Context, loc string) (*Origin, error) {
	st, err := OpenStore(ctx, loc)
	if err != nil {
		return nil, err
	}
	x, err := ReadIndex(ctx, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Origin{Name: loc, Classes: x.Classes, Items: x.Items(), Source: NewPackedSource(st, x), Index: x, store: st}, nil
}

// Close releases a packed dataset's store.
func (o *Origin) Close() error {
	if o.store == nil {
		return nil
	}
	if err := o.store.Close(); err != nil {
		return fmt.Errorf("close %s: %w", o.Name, err)
	}
	return nil
}

// embeddedHint explains the embedded set's size limit.
func embeddedHint(err error) error {
	if errors.Is(err, ErrConfig) {
		return fmt.Errorf("load embedded set (stored at 48 px; a data folder with larger photos, such as the flowers photos at 128 px, gives more): %w", err)
	}
	return fmt.Errorf("load embedded: %w", err)
}
