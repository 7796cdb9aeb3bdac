package shard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
)

// fetchChunk is how many items a decoding goroutine fetches at once.
const fetchChunk = 8

// Report describes what Load found and did.
type Report struct {
	// Source is the data folder, or "embedded".
	Source string `json:"source"`
	// Classes are the class names; Counts the images kept of each.
	Classes []string `json:"classes"`
	Counts  []int    `json:"counts"`
	// Skipped lists the bad image files, sorted by path.
	Skipped []Skipped `json:"skipped"`
	// Ignored counts the entries that are not images.
	Ignored Ignored `json:"ignored"`
	// Bytes is the total size of the image files read.
	Bytes int64 `json:"bytes"`
	// Decode is the wall time of reading, decoding and resizing.
	Decode time.Duration `json:"decode_ns"`
	// Workers is the number of decoding goroutines used.
	Workers int `json:"workers"`
}

// ClassCounts returns the images kept per class name.
func (r *Report) ClassCounts() map[string]int {
	m := make(map[string]int, len(r.Classes))
	for i, c := range r.Classes {
		m[c] = r.Counts[i]
	}
	return m
}

// Load lists, reads, decodes and resizes the images at cfg.Dir (see
// OpenOrigin: a class folder, a packed dataset, or the embedded set when
// empty) into memory.
func Load(ctx context.Context, cfg LoadConfig) (*Dataset, *Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("load: %w", err)
	}
	o, err := OpenOrigin(ctx, cfg.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", originName(cfg.Dir), err)
	}
	defer o.Close()
	return LoadOrigin(ctx, cfg, o)
}

// originName is how messages name a data location.
func originName(loc string) string {
	if loc == "" {
		return "embedded"
	}
	return loc
}

// LoadOrigin decodes the images of an opened origin (cfg.Dir is not used).
func LoadOrigin(ctx context.Context, cfg LoadConfig, o *Origin) (*Dataset, *Report, error) {
	d, _, rep, err := decodeOrigin(ctx, cfg, o, true)
	return d, rep, err
}

// ScanOrigin reads and decodes every image of an opened origin as
// LoadOrigin does (the same checks, skips, errors and report) but keeps no
// pixels: the Dataset holds the images kept and no pixels (a catalogue:
// read them through a Stream), and sums[i] are image i's ChannelSums (for
// the Normalizer). Its memory does not grow with the number of images
// beyond their items.
func ScanOrigin(ctx context.Context, cfg LoadConfig, o *Origin) (d *Dataset, sums []ChannelSums, rep *Report, err error) {
	return decodeOrigin(ctx, cfg, o, false)
}

// decodeOrigin is LoadOrigin (keep) or ScanOrigin.
func decodeOrigin(ctx context.Context, cfg LoadConfig, o *Origin, keep bool) (*Dataset, []ChannelSums, *Report, error) {
	if cfg.Strict && len(o.Skipped) > 0 {
		return nil, nil, nil, fmt.Errorf("load %s: %w: %s: %s", o.Name, ErrBadImage, o.Skipped[0].Path, o.Skipped[0].Reason)
	}
	d, sums, rep, err := decodeSource(ctx, cfg, o.Source, o.Classes, o.Items, keep)
	if err != nil && o.Name == "embedded" {
		return nil, nil, nil, embeddedHint(err)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load %s: %w", o.Name, err)
	}
	rep.Source, rep.Ignored = o.Name, o.Ignored
	rep.Skipped = append(slices.Clone(o.Skipped), rep.Skipped...)
	sortSkipped(rep.Skipped)
	return d, sums, rep, nil
}

// LoadSource decodes the given items from src (cfg.Dir is not used). Items
// whose SHA256 is set are checked against their bytes. Every class must keep
// at least one image.
func LoadSource(ctx context.Context, cfg LoadConfig, src Source, classes []string, items []Item) (*Dataset, *Report, error) {
	d, _, rep, err := decodeSource(ctx, cfg, src, classes, items, true)
	return d, rep, err
}

// decodeSource is LoadSource, keeping the pixels or only their sums.
func decodeSource(ctx context.Context, cfg LoadConfig, src Source, classes []string, items []Item, keep bool) (*Dataset, []ChannelSums, *Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("load: %w", err)
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	classes = append([]string(nil), classes...)
	items = append([]Item(nil), items...)
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].Class != items[j].Class {
			return items[i].Class < items[j].Class
		}
		return items[i].Path < items[j].Path
	})
	dec := &decoder{cfg: cfg, src: src, items: items, reasons: make([]string, len(items)),
		bytes: make([]int64, len(items)), short: make([]int, len(items))}
	if keep {
		dec.pix = make([]uint8, len(items)*cfg.Size*cfg.Size*3)
	} else {
		dec.sums = make([]ChannelSums, len(items))
	}
	if err := dec.run(ctx, workers); err != nil {
		return nil, nil, nil, err
	}
	rep := &Report{Classes: classes, Workers: workers}
	d, sums, err := dec.compact(classes, rep)
	if err != nil {
		return nil, nil, nil, err
	}
	rep.Decode = time.Since(start)
	return d, sums, rep, nil
}

// decoder is the state shared by the decoding goroutines; each writes only
// the slots of its own items.
type decoder struct {
	cfg     LoadConfig
	src     Source
	items   []Item
	pix     []uint8       // the pixels kept (nil when scanning)
	sums    []ChannelSums // when scanning: each image's sums
	reasons []string      // "" = decoded
	bytes   []int64
	short   []int // shorter side of each decoded image, in pixels
}

// run decodes every item with a pool of workers goroutines.
func (dec *decoder) run(ctx context.Context, workers int) error {
	g, ctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for a := 0; a < len(dec.items); a += fetchChunk {
			select {
			case next <- a:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for a := range next {
				if err := dec.chunk(ctx, a, min(a+fetchChunk, len(dec.items))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// chunk fetches and decodes items [a, b).
func (dec *decoder) chunk(ctx context.Context, a, b int) error {
	blobs, err := dec.src.Fetch(ctx, dec.items[a:b])
	if err != nil {
		return fmt.Errorf("fetch images %d..%d: %w", a, b-1, err)
	}
	if len(blobs) != b-a {
		return fmt.Errorf("fetch images %d..%d: source returned %d results for %d items", a, b-1, len(blobs), b-a)
	}
	n := dec.cfg.Size * dec.cfg.Size * 3
	var scratch []uint8
	if dec.pix == nil {
		scratch = make([]uint8, n)
	}
	for k, blob := range blobs {
		i := a + k
		err := blob.Err
		if err == nil && scratch != nil {
			dec.bytes[i] = int64(len(blob.Data))
			if err = dec.decodeOne(i, blob.Data, scratch); err == nil {
				dec.sums[i] = SumChannels(scratch)
			}
		} else if err == nil {
			dec.bytes[i] = int64(len(blob.Data))
			err = dec.decodeOne(i, blob.Data, dec.pix[i*n:(i+1)*n])
		} else {
			err = badImage(KindUnreadable, err)
		}
		if err != nil && dec.cfg.Strict {
			return fmt.Errorf("%s: %w", dec.items[i].Path, err)
		}
		if err != nil {
			dec.reasons[i] = err.Error()
		}
	}
	return nil
}

// decodeOne hashes, checks and decodes item i.
func (dec *decoder) decodeOne(i int, data []byte, dst []uint8) error {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	if want := dec.items[i].SHA256; want != "" && want != h {
		return badImage(KindChanged, fmt.Errorf("sha256 %s, expected %s", h, want))
	}
	dec.items[i].SHA256 = h
	var err error
	dec.short[i], err = decodeInto(dst, data, dec.cfg.Size, dec.cfg.MaxPixels)
	return err
}

// checkSize refuses a training size above the shorter side of most images
// (the median): the data cannot give it, only blur an enlargement of it.
func checkSize(size int, sides []int) error {
	if len(sides) == 0 {
		return nil
	}
	slices.Sort(sides)
	median := sides[len(sides)/2]
	if size <= median {
		return nil
	}
	larger := len(sides) - sort.SearchInts(sides, size)
	return errorf(ErrConfig, "image size %d px: the photos' shorter side is %d px (median; %d of %d images reach %d px), "+
		"so the data cannot give %d px: pass a size of at most %d, or data with larger photos", size, median, larger, len(sides), size, size, median)
}

// compact drops the bad items, moving pixels (or sums) down, and fills the
// report.
func (dec *decoder) compact(classes []string, rep *Report) (*Dataset, []ChannelSums, error) {
	n := dec.cfg.Size * dec.cfg.Size * 3
	kept := 0
	rep.Counts = make([]int, len(classes))
	var sides []int
	for i, it := range dec.items {
		if dec.reasons[i] != "" {
			rep.Skipped = append(rep.Skipped, Skipped{Path: it.Path, Reason: dec.reasons[i]})
			continue
		}
		rep.Bytes += dec.bytes[i]
		rep.Counts[it.Class]++
		sides = append(sides, dec.short[i])
		if dec.pix != nil {
			copy(dec.pix[kept*n:(kept+1)*n], dec.pix[i*n:(i+1)*n])
		} else {
			dec.sums[kept] = dec.sums[i]
		}
		dec.items[kept] = it
		kept++
	}
	for c, cnt := range rep.Counts {
		if cnt == 0 {
			return nil, nil, errorf(ErrLayout, "class %s: none of its images could be used", classes[c])
		}
	}
	if err := checkSize(dec.cfg.Size, sides); err != nil {
		return nil, nil, err
	}
	if dec.pix == nil {
		d, err := NewDataset(classes, dec.items[:kept], 0, nil)
		return d, dec.sums[:kept:kept], err
	}
	d, err := NewDataset(classes, dec.items[:kept], dec.cfg.Size, dec.pix[:kept*n:kept*n])
	return d, nil, err
}
