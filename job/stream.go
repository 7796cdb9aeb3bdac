package job

import (
	"context"
	"fmt"

	"github.com/whorl-ml/whorl/shard"
)

// StreamConfig sizes the image reading of data opened with OpenData.
type StreamConfig struct {
	// CacheBytes bounds the decoded images kept (shard.StreamConfig).
	CacheBytes int64
	// ReadAhead is how many of the requests given to Data.Prefetch are
	// read in the background.
	ReadAhead int
	// Threads is the number of decoding goroutines (0: GOMAXPROCS).
	Threads int
}

// DefaultStreamConfig keeps shard.DefaultCacheBytes of decoded images and
// reads shard.DefaultReadAhead requests ahead.
func DefaultStreamConfig() StreamConfig {
	return StreamConfig{CacheBytes: shard.DefaultCacheBytes, ReadAhead: shard.DefaultReadAhead}
}

// OpenData prepares the data c describes as LoadData does (the same images
// kept and skipped, split, manifest and normaliser, bit for bit) without
// holding their pixels: each image is read and decoded once to check it
// and to sum its channels for the normaliser, then read again when a phase
// asks for it (Data.Images), through a bounded cache. So the memory of a
// role that opens its data this way does not grow with the data set.
func OpenData(ctx context.Context, c Config, s StreamConfig) (*Data, error) {
	var sums []shard.ChannelSums
	d, err := openData(ctx, c, func(lc shard.LoadConfig, o *shard.Origin) (*shard.Dataset, *shard.Report, error) {
		set, ss, rep, err := shard.ScanOrigin(ctx, lc, o)
		sums = ss
		return set, rep, err
	})
	if err != nil {
		return nil, err
	}
	var total shard.ChannelSums
	for _, i := range d.Split.Train {
		total.Add(sums[i])
	}
	d.Norm = total.Normalizer()
	d.Stream = shard.NewStream(shard.StreamConfig{Classes: d.Set.Classes, Items: d.Set.Items, Source: d.Source,
		Size: c.Data.Stored(), CacheBytes: s.CacheBytes, ReadAhead: s.ReadAhead, Threads: s.Threads})
	return d, nil
}

// Images returns the pixels of images ids: a dataset and the index of each
// id in it. Data loaded whole gives its own set and the ids; streamed data
// (OpenData) reads them through its Stream into a dataset of their own.
func (d *Data) Images(ctx context.Context, ids []int) (*shard.Dataset, []int, error) {
	if d.Stream != nil {
		return d.Stream.Images(ctx, ids)
	}
	for _, id := range ids {
		if id < 0 || id >= d.Set.Len() {
			return nil, nil, fmt.Errorf("image id %d out of range 0..%d", id, d.Set.Len()-1)
		}
	}
	return d.Set, ids, nil
}

// Prefetch names the requests of Images that follow the current one, for
// streamed data to read ahead; data loaded whole has nothing to do.
func (d *Data) Prefetch(next [][]int) {
	if d.Stream != nil {
		d.Stream.Prefetch(next)
	}
}
